// The bi-branch cache kept on the GPU between steps (WebGPU backend): per layer the full branch and the compressed
// branch live in gpu-buffer tensors, so a step sends the layer graphs nothing from the host but its own rows.
// - Full branch: each layer's graph outputs its keys and values with the step's tokens appended (k_full_next,
//   v_full_next, gpu-buffer); the next step feeds them straight back.
// - Compressed branch: grows only when a block of W tokens leaves the window (every W steps). The rows that leave
//   are appended on the device by a small Concat graph, and the same graph drops them from the front of the full
//   branch. At 16 bits the appended rows are the fp16 values widened to f32; at 8/4/2 bits they are the block's
//   codes and scales (packedCodes.ts), which the layer graph dequantises every step: the device holds codes.
// The host computes what is appended, from the compressed features each step downloads anyway (c_k_new,
// c_v_new: T x rank per layer), with the quantiser and fp16 rounding the JS cache uses, so the two hold the same
// values. The JS cache (BiBranchCache) stays the record: memory reports, snapshots and truncation read it
// (onnxruntime-node cannot read a gpu-buffer tensor back), and whenever the copies here do not mirror it (after a
// truncation, a restore or a failed step) the next step uploads them from it once.
import { ort } from '../onnx/ort';
import type { CompressedBits } from '../../protocol';
import { type BiBranchCache, type CacheShape, type CompressedBlock } from '../cache/biBranchCache';
import { type CachePolicy, blocksLeaving } from '../cache/cachePolicy';
import { GrowableRows } from '../cache/growableRows';
import { quantiseKeys, quantiseValues } from '../cache/quantizer';
import { GraphBuilder } from '../onnx/graphBuilder';
import { type FeatureKind, type QuantisedBits, packBlock, packedColumns, packedInputNames, scaleColumns } from '../onnx/packedCodes';
import { floatToHalfBits, halfBitsToFloat } from '../half';

/** A device tensor of `width` columns; absent while it has no rows (a zero-sized gpu-buffer is never made). */
interface Resident {
  width: number;
  tensor: ort.Tensor | undefined;
}

interface LayerCopy {
  /** Graph input name -> tensor: k_full, v_full and the compressed inputs (c_k/c_v, or their codes and scales). */
  inputs: Map<string, Resident>;
  kRank: number;
  vRank: number;
  /** Compressed features of the tokens still in the window, appended to the branch when their block leaves. */
  kPending: GrowableRows | undefined;
  vPending: GrowableRows | undefined;
}

/** Rows to append to each of a layer's compressed inputs. */
type Appended = Map<string, Float32Array>;

const NOT_MIRRORING = -1;

export class DeviceCache {
  private readonly layers: LayerCopy[];
  private readonly policy: CachePolicy;
  /** The cache length the copies mirror; NOT_MIRRORING when they must be uploaded from the JS cache. */
  private tokens = NOT_MIRRORING;
  private compressedTokens = 0;

  private constructor(private readonly shape: CacheShape, private readonly append: ort.InferenceSession) {
    this.policy = { window: shape.window, compressed: shape.ranks !== undefined };
    this.layers = Array.from({ length: shape.layers }, (_, i) => {
      const kRank = shape.ranks?.k[i] ?? 0, vRank = shape.ranks?.v[i] ?? 0;
      const inputs = new Map<string, Resident>([['k_full', { width: shape.kvDim, tensor: undefined }], ['v_full', { width: shape.kvDim, tensor: undefined }]]);
      if (shape.ranks) for (const [name, width] of compressedInputs(shape.bits, kRank, vRank)) inputs.set(name, { width, tensor: undefined });
      return {
        inputs, kRank, vRank,
        kPending: shape.ranks ? new GrowableRows(kRank) : undefined,
        vPending: shape.ranks ? new GrowableRows(vRank) : undefined,
      };
    });
  }

  static async create(shape: CacheShape, sessionOptions: ort.InferenceSession.SessionOptions): Promise<DeviceCache> {
    const graph = appendGraph();
    const session = await ort.InferenceSession.create(graph.model, { ...sessionOptions, preferredOutputLocation: 'gpu-buffer' });
    return new DeviceCache(shape, session);
  }

  /** Makes the copies mirror `cache`, uploading every branch from it when they do not. */
  async mirror(cache: BiBranchCache): Promise<void> {
    if (this.tokens === cache.length && this.compressedTokens === cache.fullStart) return;
    this.clear();
    const state = cache.exportState();
    const W = this.shape.window;
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i]!;
      const saved = state.layers[i]!;
      const fullTokens = state.tokens - state.compressedTokens;
      await this.extend(l, 'k_full', saved.kFull);
      await this.extend(l, 'v_full', saved.vFull);
      if (l.kPending && l.vPending) {
        l.kPending.append(saved.kPending!, fullTokens);
        l.vPending.append(saved.vPending!, fullTokens);
        const pieces = saved.blocks.map((block) => this.appended(block, l, W));
        for (const name of l.inputs.keys()) {
          if (name === 'k_full' || name === 'v_full') continue;
          const parts = pieces.map((p) => p.get(name)!);
          await this.extend(l, name, concat(parts));
        }
      }
    }
    this.tokens = state.tokens;
    this.compressedTokens = state.compressedTokens;
  }

  /** Layer `layer`'s cache inputs: the device tensors, or empty host tensors for branches without rows. */
  feeds(layer: number): Record<string, ort.Tensor> {
    if (this.tokens === NOT_MIRRORING) throw new Error('the device cache was not mirrored before the step');
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, resident] of this.layers[layer]!.inputs) feeds[name] = resident.tensor ?? new ort.Tensor('float32', new Float32Array(0), [0, resident.width]);
    return feeds;
  }

  /** Takes a layer's step outputs: its full branch with the step appended, and the step's compressed features. */
  take(layer: number, out: ort.InferenceSession.OnnxValueMapType, count: number): void {
    const l = this.layers[layer]!;
    for (const [output, input] of [['k_full_next', 'k_full'], ['v_full_next', 'v_full']] as const) {
      const tensor = out[output] as ort.Tensor;
      if (tensor.location !== 'gpu-buffer') throw new Error(`layer ${layer}: ${output} came back in ${tensor.location} memory, not on the GPU`);
      const resident = l.inputs.get(input)!;
      resident.tensor?.dispose();
      resident.tensor = tensor;
    }
    l.kPending?.append((out.c_k_new as ort.Tensor).data as Float32Array, count);
    l.vPending?.append((out.c_v_new as ort.Tensor).data as Float32Array, count);
  }

  /** After every layer took its step: the blocks that leave the window move to the compressed branch. */
  async commit(count: number): Promise<void> {
    const tokens = this.tokens + count;
    const blocks = blocksLeaving(this.policy, this.compressedTokens, tokens);
    const W = this.shape.window, leaving = blocks * W;
    for (const l of this.layers) {
      if (blocks === 0) break;
      const added = new Map<string, Float32Array[]>();
      for (let b = 0; b < blocks; b++) {
        const block = this.compress(l, l.kPending!.slice(b * W, (b + 1) * W), l.vPending!.slice(b * W, (b + 1) * W));
        for (const [name, rows] of this.appended(block, l, W)) added.set(name, [...(added.get(name) ?? []), rows]);
      }
      for (const [name, parts] of added) await this.extend(l, name, concat(parts));
      await this.dropFront(l, 'k_full', leaving);
      await this.dropFront(l, 'v_full', leaving);
      l.kPending!.dropFront(leaving);
      l.vPending!.dropFront(leaving);
    }
    this.tokens = tokens;
    this.compressedTokens += leaving;
  }

  /** Frees every copy: the next step uploads from the JS cache. */
  clear(): void {
    for (const l of this.layers) {
      for (const resident of l.inputs.values()) {
        resident.tensor?.dispose();
        resident.tensor = undefined;
      }
      l.kPending?.truncate(0);
      l.vPending?.truncate(0);
    }
    this.tokens = NOT_MIRRORING;
    this.compressedTokens = 0;
  }

  async dispose(): Promise<void> {
    this.clear();
    await this.append.release();
  }

  /** A block of features as the JS cache stores it: fp16 rows, or quantised (the same functions, the same values). */
  private compress(l: LayerCopy, k: Float32Array, v: Float32Array): CompressedBlock {
    const bits = this.shape.bits;
    const W = this.shape.window;
    if (bits === 16) return { k: toHalf(k), v: toHalf(v) };
    return { k: quantiseKeys(k, W, l.kRank, bits), v: quantiseValues(v, W, l.vRank, bits) };
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
    const next = remaining > 0 ? await this.runAppend(resident, count, new ort.Tensor('float32', new Float32Array(0), [0, resident.width])) : undefined;
    resident.tensor.dispose();
    resident.tensor = next;
  }

  private async runAppend(resident: Resident, drop: number, added: ort.Tensor): Promise<ort.Tensor> {
    const out = await this.append.run({
      a: resident.tensor ?? new ort.Tensor('float32', new Float32Array(0), [0, resident.width]),
      drop: new ort.Tensor('int64', BigInt64Array.of(BigInt(drop)), [1]),
      b: added,
    });
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

function toHalf(rows: Float32Array): Uint16Array {
  const out = new Uint16Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = floatToHalfBits(rows[i]!);
  return out;
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
