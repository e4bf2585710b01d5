// The bi-branch cache kept on the GPU between steps (WebGPU backend): per layer the full branch, the compressed
// features of its tokens, and the compressed branch live in gpu-buffer tensors, so a decode step sends the layer
// graphs nothing from the host but its embedding and reads nothing back but the logits.
// - Full branch: each layer's graph outputs its keys and values with the step's tokens appended (k_full_next,
//   v_full_next, gpu-buffer), and with CSKV the features of those tokens likewise (c_k_pending_next,
//   c_v_pending_next); the next step feeds them straight back.
// - Compressed branch: grows only when a block of W tokens leaves the window (every W steps). The JS record is
//   brought up to date first (its rows and features read back once), so the JS cache compresses the block itself
//   (its quantiser or fp16 rounding); the device takes that block as stored (so both hold the same values), and a
//   small Concat graph appends it and drops the block from the front of the full branch and of the features. At
//   16 bits the appended rows are the fp16 values widened to f32; at 8/4/2 bits they are the block's codes and
//   scales (packedCodes.ts), dequantised by the layer graph every step: the device holds codes.
// The JS cache (BiBranchCache) stays the record that snapshots read, but it lags: it receives the
// rows the device holds only when they are read back (`flush`): before a block leaves the window (the device
// drops its full rows then), and when the engine snapshots or recovers from a failed step. A truncation cuts the
// copies on the device (a Slice per tensor) and the record where it holds more; nothing is read back. Whenever the
// copies here do not hold the cache (first step, after a restore or a failure) the next step uploads them from the
// flushed JS cache once.
import { ort } from '../onnx/ort';
import type { CompressedBits } from '../../protocol';
import { type BiBranchCache, type CacheShape, type CompressedBlock } from '../cache/biBranchCache';
import { type CachePolicy, type TruncationPlan, blocksLeaving, truncation } from '../cache/cachePolicy';
import { GraphBuilder } from '../onnx/graphBuilder';
import { type FeatureKind, type QuantisedBits, packBlock, packedColumns, packedInputNames, scaleColumns } from '../onnx/packedCodes';
import { halfBitsToFloat } from '../half';

/** A device tensor of `width` f32 columns; absent while it has no rows (a zero-sized gpu-buffer is never made). */
interface Resident {
  width: number;
  tensor: ort.Tensor | undefined;
}

/** The layer graph's output that becomes each fed-back input (fullBranchOutputs in layerGraph.ts). */
const FED_BACK = [['k_full_next', 'k_full'], ['v_full_next', 'v_full'], ['c_k_pending_next', 'c_k_pending'], ['c_v_pending_next', 'c_v_pending']] as const;
/** The inputs that grow with the full branch, one row per token in it. */
const FULL_BRANCH_INPUTS = new Set<string>(FED_BACK.map(([, input]) => input));

interface LayerCopy {
  /** Graph input name -> tensor: k_full, v_full, c_k_pending/c_v_pending and the compressed inputs (c_k/c_v, or their codes and scales). */
  inputs: Map<string, Resident>;
  kRank: number;
  vRank: number;
}

/** Rows to append to each of a layer's compressed inputs. */
type Appended = Map<string, Float32Array>;

/** Bytes the copies hold on the device, by branch: exact sums of the tensors' sizes (4-byte elements). */
export interface DeviceCacheBytes {
  /** Keys and values of the full-precision window. */
  full: number;
  /** Compressed features of the window's tokens, waiting for their block to leave (CSKV). */
  pending: number;
  /** The compressed branch: f32 rows (16 bits) or packed codes with their scales and zeros. */
  compressed: number;
}

const NOT_HELD = -1;

export class DeviceCache {
  private readonly layers: LayerCopy[];
  private readonly policy: CachePolicy;
  /** Tokens the copies hold; NOT_HELD when they must be uploaded from the JS cache. */
  private tokens = NOT_HELD;
  private compressedTokens = 0;

  private constructor(
    private readonly shape: CacheShape,
    /** y = a without its first `drop` rows, then b; on the device. */
    private readonly append: ort.InferenceSession,
    /** y = rows [start, end) of a; read back to the host. */
    private readonly reader: ort.InferenceSession,
    /** y = rows [start, end) of a; kept on the device. */
    private readonly slicer: ort.InferenceSession,
  ) {
    this.policy = { window: shape.window, compressed: shape.ranks !== undefined };
    this.layers = Array.from({ length: shape.layers }, (_, i) => {
      const kRank = shape.ranks?.k[i] ?? 0, vRank = shape.ranks?.v[i] ?? 0;
      const inputs = new Map<string, Resident>([['k_full', { width: shape.kvDim, tensor: undefined }], ['v_full', { width: shape.kvDim, tensor: undefined }]]);
      if (shape.ranks) {
        inputs.set('c_k_pending', { width: kRank, tensor: undefined }).set('c_v_pending', { width: vRank, tensor: undefined });
        for (const [name, width] of compressedInputs(shape.bits, kRank, vRank)) inputs.set(name, { width, tensor: undefined });
      }
      return { inputs, kRank, vRank };
    });
  }

  static async create(shape: CacheShape, sessionOptions: ort.InferenceSession.SessionOptions): Promise<DeviceCache> {
    const [append, read, slice] = await Promise.all([
      ort.InferenceSession.create(appendGraph().model, { ...sessionOptions, preferredOutputLocation: 'gpu-buffer' }),
      ort.InferenceSession.create(sliceGraph().model, { ...sessionOptions, preferredOutputLocation: 'cpu' }),
      ort.InferenceSession.create(sliceGraph().model, { ...sessionOptions, preferredOutputLocation: 'gpu-buffer' }),
    ]);
    return new DeviceCache(shape, append, read, slice);
  }

  /** What the copies hold (tokens, and of them compressed), or undefined when the JS cache holds everything. */
  get held(): { tokens: number; compressedTokens: number } | undefined {
    return this.tokens === NOT_HELD ? undefined : { tokens: this.tokens, compressedTokens: this.compressedTokens };
  }

  /** A device tensor's rows from `start` on, read back (a prefill chunk's rows for the head, calibration's keys). */
  async read(tensor: ort.Tensor, start = 0): Promise<Float32Array> {
    const out = await this.reader.run({ a: tensor, start: int64(start), end: int64(tensor.dims[0]!) });
    return (out.y as ort.Tensor).data as Float32Array;
  }

  bytes(): DeviceCacheBytes {
    const bytes = { full: 0, pending: 0, compressed: 0 };
    for (const l of this.layers) {
      for (const [name, resident] of l.inputs) {
        const size = resident.tensor ? resident.tensor.dims[0]! * resident.width * 4 : 0;
        if (name === 'k_full' || name === 'v_full') bytes.full += size;
        else if (FULL_BRANCH_INPUTS.has(name)) bytes.pending += size;
        else bytes.compressed += size;
      }
    }
    return bytes;
  }

  /** Makes the copies hold `cache` when they do not, uploading every branch from it (which must be flushed). */
  async mirror(cache: BiBranchCache): Promise<void> {
    if (this.tokens !== NOT_HELD) return;
    const state = cache.exportState();
    const W = this.shape.window;
    try {
      for (let i = 0; i < this.layers.length; i++) {
        const l = this.layers[i]!;
        const saved = state.layers[i]!;
        await this.extend(l, 'k_full', saved.kFull);
        await this.extend(l, 'v_full', saved.vFull);
        if (!this.shape.ranks) continue;
        await this.extend(l, 'c_k_pending', saved.kPending!);
        await this.extend(l, 'c_v_pending', saved.vPending!);
        const pieces = saved.blocks.map((block) => this.appended(block, l, W));
        for (const name of l.inputs.keys()) {
          if (FULL_BRANCH_INPUTS.has(name)) continue;
          await this.extend(l, name, concat(pieces.map((p) => p.get(name)!)));
        }
      }
    } catch (err) {
      this.clear();
      throw err;
    }
    this.tokens = state.tokens;
    this.compressedTokens = state.compressedTokens;
  }

  /** Layer `layer`'s cache inputs: the device tensors, or empty host tensors for branches without rows. */
  feeds(layer: number): Record<string, ort.Tensor> {
    if (this.tokens === NOT_HELD) throw new Error('the device cache was not mirrored before the step');
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, resident] of this.layers[layer]!.inputs) feeds[name] = resident.tensor ?? emptyRows(resident.width);
    return feeds;
  }

  /**
   * Takes a layer's step outputs: its full branch and pending features with the step's tokens appended. The
   * outputs nobody reads (the step's own rows) are freed; y is left to the caller.
   */
  take(layer: number, out: ort.InferenceSession.OnnxValueMapType): void {
    const l = this.layers[layer]!;
    for (const [output, input] of FED_BACK) {
      const resident = l.inputs.get(input);
      if (!resident) continue;
      const tensor = out[output] as ort.Tensor;
      if (tensor.location !== 'gpu-buffer') throw new Error(`layer ${layer}: ${output} came back in ${tensor.location} memory, not on the GPU`);
      resident.tensor?.dispose();
      resident.tensor = tensor;
    }
    const kept = new Set<string>(['y', ...FED_BACK.map(([output]) => output)]);
    for (const [name, value] of Object.entries(out)) if (!kept.has(name)) (value as ort.Tensor).dispose();
  }

  /**
   * After every layer took a step of `count` tokens: the blocks that leave the window move to the compressed
   * branch. The JS cache is flushed first, since the leaving tokens' full rows are dropped here, and compresses
   * the blocks: the device appends them as the record stores them (one read of each tensor per layer).
   */
  async commit(count: number, cache: BiBranchCache): Promise<void> {
    const tokens = this.tokens + count;
    const blocks = blocksLeaving(this.policy, this.compressedTokens, tokens);
    if (blocks === 0) {
      this.tokens = tokens;
      return;
    }
    await this.flush(cache, tokens);
    this.tokens = tokens;
    const W = this.shape.window, leaving = blocks * W;
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i]!;
      const stored = cache.compressedBlocks(i, this.compressedTokens);
      if (stored.length !== blocks) throw new Error(`layer ${i}: the JS cache compressed ${stored.length} blocks, the device copies expected ${blocks}`);
      const added = new Map<string, Float32Array[]>();
      for (const block of stored) {
        for (const [name, rows] of this.appended(block, l, W)) added.set(name, [...(added.get(name) ?? []), rows]);
      }
      for (const [name, parts] of added) await this.extend(l, name, concat(parts));
      for (const name of FULL_BRANCH_INPUTS) if (l.inputs.has(name)) await this.dropFront(l, name, leaving);
    }
    this.compressedTokens += leaving;
  }

  /**
   * Brings the JS cache up to the copies' first `upTo` tokens (default: all they hold): reads back the full
   * branch's rows (and features) it lacks and appends them. Every layer is read before any is appended, so a
   * failed read leaves the JS cache as it was.
   */
  async flush(cache: BiBranchCache, upTo = this.tokens): Promise<void> {
    const from = cache.length;
    if (this.tokens === NOT_HELD || upTo <= from) return;
    if (cache.fullStart !== this.compressedTokens) throw new Error(`the JS cache compressed ${cache.fullStart} tokens, the device copies ${this.compressedTokens}`);
    const [start, end] = [from - this.compressedTokens, upTo - this.compressedTokens];
    const rows: Float32Array[][] = [];
    for (const l of this.layers) {
      const names = ['k_full', 'v_full', ...(this.shape.ranks ? ['c_k_pending', 'c_v_pending'] : [])];
      const layerRows: Float32Array[] = [];
      for (const name of names) layerRows.push(await this.readRows(l, name, start, end));
      rows.push(layerRows);
    }
    const count = upTo - from;
    rows.forEach(([k, v, ck, cv], i) => cache.append(i, count, k!, v!, ck, cv));
    cache.commit(count);
  }

  /**
   * Cuts the copies to `length` tokens on the device, by the cache policy's truncation (inside the compressed
   * branch only whole blocks stay: the plan says what the engine prefills again), and the JS record with them
   * where it holds more. Nothing is read back; every tensor is cut before any is replaced, so a failed cut leaves
   * the copies as they were.
   */
  async truncate(length: number, cache: BiBranchCache): Promise<TruncationPlan> {
    if (this.tokens === NOT_HELD) throw new Error('the device copies hold no cache to truncate');
    const plan = truncation(this.policy, this.compressedTokens, this.tokens, length);
    const cut = new Map<Resident, ort.Tensor | undefined>();
    try {
      for (const l of this.layers) {
        for (const [name, resident] of l.inputs) {
          if (!resident.tensor) continue;
          const rows = resident.tensor.dims[0]!;
          // Compressed inputs hold rows per block (keys' scales) or per token: the kept share of whole blocks.
          const keep = FULL_BRANCH_INPUTS.has(name) ? plan.fullTokens : (rows * plan.compressedTokens) / this.compressedTokens;
          if (keep === rows) continue;
          cut.set(resident, keep > 0 ? await this.sliceRows(resident.tensor, 0, keep) : undefined);
        }
      }
    } catch (err) {
      for (const tensor of cut.values()) tensor?.dispose();
      throw err;
    }
    for (const [resident, tensor] of cut) {
      resident.tensor!.dispose();
      resident.tensor = tensor;
    }
    const kept = plan.compressedTokens + plan.fullTokens;
    if (cache.length > kept) cache.truncate(kept);
    this.tokens = kept;
    this.compressedTokens = plan.compressedTokens;
    return plan;
  }

  /** Frees every copy: the next step uploads from the JS cache (flush it first, or the rows not read back are lost). */
  clear(): void {
    for (const l of this.layers) {
      for (const resident of l.inputs.values()) {
        resident.tensor?.dispose();
        resident.tensor = undefined;
      }
    }
    this.tokens = NOT_HELD;
    this.compressedTokens = 0;
  }

  async dispose(): Promise<void> {
    this.clear();
    await Promise.all([this.append.release(), this.reader.release(), this.slicer.release()]);
  }

  /** What a stored block adds to each compressed input of the layer graph. */
  private appended(block: CompressedBlock, l: LayerCopy, W: number): Appended {
    const bits = this.shape.bits;
    const result: Appended = new Map();
    for (const [kind, stored, rank] of [['k', block.k, l.kRank], ['v', block.v, l.vRank]] as const) {
      if (stored instanceof Uint16Array) {
        if (bits !== 16) throw new Error(`16-bit rows in a ${bits}-bit cache`);
        result.set(`c_${kind}`, Float32Array.from(stored, halfBitsToFloat));
      } else {
        if (bits === 16) throw new Error('a quantised block in a 16-bit cache');
        const packed = packBlock(stored, kind, W, rank, bits);
        const [codes, scales, zeros] = packedInputNames(kind);
        result.set(codes, packed.codes).set(scales, packed.scales).set(zeros, packed.zeros);
      }
    }
    return result;
  }

  /** Rows [start, end) of a device input, read back to the host. */
  private async readRows(l: LayerCopy, name: string, start: number, end: number): Promise<Float32Array> {
    const resident = l.inputs.get(name)!;
    if (end <= start) return new Float32Array(0);
    if (!resident.tensor || resident.tensor.dims[0]! < end) throw new Error(`${name} holds ${resident.tensor?.dims[0] ?? 0} rows on the device, ${end} were to be read`);
    const out = await this.reader.run({ a: resident.tensor, start: int64(start), end: int64(end) });
    return (out.y as ort.Tensor).data as Float32Array;
  }

  /** Rows [start, end) of a device tensor as a new device tensor. */
  private async sliceRows(tensor: ort.Tensor, start: number, end: number): Promise<ort.Tensor> {
    const out = await this.slicer.run({ a: tensor, start: int64(start), end: int64(end) });
    return out.y as ort.Tensor;
  }

  /** Appends `rows` (whole rows of the input's width) to a device input. */
  private async extend(l: LayerCopy, name: string, rows: Float32Array): Promise<void> {
    if (rows.length === 0) return;
    const resident = l.inputs.get(name)!;
    const next = await this.runAppend(resident, 0, new ort.Tensor('float32', rows, [rows.length / resident.width, resident.width]));
    resident.tensor?.dispose();
    resident.tensor = next;
  }

  /** Drops the first `count` rows of a device input. */
  private async dropFront(l: LayerCopy, name: string, count: number): Promise<void> {
    const resident = l.inputs.get(name)!;
    if (!resident.tensor || count === 0) return;
    const remaining = resident.tensor.dims[0]! - count;
    const next = remaining > 0 ? await this.runAppend(resident, count, emptyRows(resident.width)) : undefined;
    resident.tensor.dispose();
    resident.tensor = next;
  }

  private async runAppend(resident: Resident, drop: number, added: ort.Tensor): Promise<ort.Tensor> {
    const out = await this.append.run({ a: resident.tensor ?? emptyRows(resident.width), drop: int64(drop), b: added });
    return out.y as ort.Tensor;
  }
}

/** The compressed inputs of a layer graph fed from the device, and their widths. */
function compressedInputs(bits: CompressedBits, kRank: number, vRank: number): [string, number][] {
  if (bits === 16) return [['c_k', kRank], ['c_v', vRank]];
  const inputs: [string, number][] = [];
  for (const [kind, rank] of [['k', kRank], ['v', vRank]] as [FeatureKind, number][]) {
    const [codes, scales, zeros] = packedInputNames(kind);
    inputs.push([codes, packedColumns(kind, rank, bits as QuantisedBits)], [scales, scaleColumns(kind, rank)], [zeros, scaleColumns(kind, rank)]);
  }
  return inputs;
}

/** y = a without its first `drop` rows, then b: how every device copy grows and shrinks. */
function appendGraph(): ReturnType<GraphBuilder['finish']> {
  const g = new GraphBuilder('device_append');
  const a = g.input('a', ['N', 'C']);
  const drop = g.input('drop', [1], 'int64');
  const b = g.input('b', ['M', 'C']);
  const kept = g.op('Slice', [a, drop, g.ints([2 ** 62]), g.ints([0])]);
  g.output(g.op('Concat', [kept, b], { axis: 0 }), 'y', ['R', 'C']);
  return g.finish();
}

/**
 * y = rows [start, end) of a: how rows come back to the host (onnxruntime-node reads a gpu-buffer tensor only as a
 * session's 'cpu' output), and how a truncation cuts a copy on the device (a 'gpu-buffer' output).
 */
function sliceGraph(): ReturnType<GraphBuilder['finish']> {
  const g = new GraphBuilder('device_slice');
  const a = g.input('a', ['N', 'C']);
  const start = g.input('start', [1], 'int64');
  const end = g.input('end', [1], 'int64');
  g.output(g.op('Slice', [a, start, end, g.ints([0])]), 'y', ['R', 'C']);
  return g.finish();
}

function emptyRows(width: number): ort.Tensor {
  return new ort.Tensor('float32', new Float32Array(0), [0, width]);
}

function int64(value: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.of(BigInt(value)), [1]);
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
