// The CPU backend: one onnxruntime session per decoder layer plus one for the output head, each built from the
// checkpoint's weights at load time (no Python, no exported model files). The bi-branch cache lives in JS memory
// and is fed to each layer's graph as inputs, read in place: full-branch keys already rotated (unless the RoPE
// depends on the length), 16-bit compressed features as the fp16 rows the cache stores.
import { ort } from '../onnx/ort';
import type { MemoryReport } from '../../protocol';
import { DEFAULTS } from '../../shared/settings';
import { BiBranchCache } from '../cache/biBranchCache';
import { type Snapshot, decodeSnapshot, encodeSnapshot } from '../cache/cacheSnapshot';
import { readCskvFile } from '../cskvFile';
import { nextChunkEnd } from '../cache/cachePolicy';
import { type Engine, type EngineInfo, type EngineOptions, type PrefillOptions } from '../engine';
import { CancelledError, ModelFormatError, RuntimeError } from '../errors';
import { type ModelConfig, readModelConfig } from '../model/config';
import { modelFingerprint } from '../model/fingerprint';
import { ropeDependsOnLength, ropeFrequencies, ropeTables } from '../model/rope';
import { DEFAULT_WEIGHT_FORMAT, WEIGHT_FORMATS, isWeightFormat } from '../model/weightFormat';
import { ModelWeights } from '../model/weights';
import { type LayerWeights, buildHeadGraph, buildLayerGraph } from '../onnx/layerGraph';
import { toFloat32, type DType } from '../safetensors';

const DEFAULT_CHUNK = 512;

export class OnnxEngine implements Engine {
  private readonly history: number[] = [];
  private rope: { cos: Float32Array; sin: Float32Array; positions: number; seqLen: number } | undefined;

  private constructor(
    readonly info: EngineInfo,
    private readonly layers: ort.InferenceSession[],
    private readonly head: ort.InferenceSession,
    private readonly embedding: { bytes: Uint8Array; dtype: DType },
    private readonly cache: BiBranchCache,
    private readonly chunkSize: number,
  ) {}

  static async load(modelDir: string, options: EngineOptions = {}): Promise<OnnxEngine> {
    const format = options.weights ?? DEFAULT_WEIGHT_FORMAT;
    if (!isWeightFormat(format)) throw new RuntimeError('BAD_ARGUMENT', `weights must be one of ${WEIGHT_FORMATS.join(', ')}, got "${String(format)}"`);
    const config = readModelConfig(modelDir);
    const weights = ModelWeights.open(modelDir, config);
    const sessions: ort.InferenceSession[] = [];
    try {
      const fingerprint = modelFingerprint(config, weights);
      const factors = options.cskv ? readCskvFile(options.cskv, config, fingerprint) : undefined;
      const window = options.window ?? factors?.window ?? DEFAULTS.window;
      const bits = options.bits ?? factors?.bits ?? 16;
      // Dynamic NTK changes every position's angles as the cache grows: such keys are kept unrotated.
      const keysRotated = !ropeDependsOnLength(config);
      // Compressed features reach the graph as f32. float16 tensors over the 16-bit rows fail where the JavaScript
      // engine has Float16Array (Node 24, code-server's: "not enough space: expected 192, got 0"; onnxruntime-node
      // 1.30's binding reads no bytes from them), so 16-bit rows are widened per step, as before the rows existed.
      const graphOptions = { weights: format, keysRotated, compressedType: 'float32' as const };
      // No spinning: idle pool threads that spin between the many small per-layer runs take the cores from Node's
      // own thread (and from the editor beside the sidecar). Measured on 2 cores: decode of a 0.5B model at 512
      // tokens 331 -> 122 ms/token, prefill 124 -> 152 tokens/s.
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        executionProviders: ['cpu'], graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } },
      };
      if (options.threads !== undefined) sessionOptions.intraOpNumThreads = options.threads;
      for (let i = 0; i < config.layers; i++) {
        // One layer's f32 weights live only while its graph is built (quantised there for q8/q4).
        const graph = buildLayerGraph(config, readLayerWeights(weights, config, i), factors?.layers[i], graphOptions);
        sessions.push(await createSession(graph, sessionOptions, `layer ${i}`));
      }
      const H = config.hiddenSize;
      const embeddingName = 'model.embed_tokens.weight';
      const embeddingInfo = weights.info(embeddingName);
      checkShape(weights, embeddingName, [config.vocabSize, H]);
      // Kept in the checkpoint's dtype and converted row by row: a bf16 table stays half the size of f32.
      const embedding = { bytes: weights.readBytes(embeddingName), dtype: embeddingInfo.dtype as DType };
      const headName = config.tieEmbeddings ? embeddingName : 'lm_head.weight';
      checkShape(weights, headName, [config.vocabSize, H]);
      const headBytes = config.tieEmbeddings ? embedding.bytes : weights.readBytes(headName);
      const headDtype = weights.info(headName).dtype as DType;
      const itemSize = headDtype === 'F32' ? 4 : 2;
      const headRows = (row: number): Float32Array => toFloat32(headBytes.subarray(row * H * itemSize, (row + 1) * H * itemSize), headDtype);
      const head = await createSession(
        buildHeadGraph(config, weights.readFloat32('model.norm.weight', [H]), format === 'f32' ? weights.readFloat32(headName, [config.vocabSize, H]) : headRows, format),
        sessionOptions, 'output head');
      const cache = new BiBranchCache({
        layers: config.layers, kvDim: config.kvDim, window, bits, keysRotated,
        ranks: factors ? { k: factors.layers.map((l) => l.k.rank), v: factors.layers.map((l) => l.v.rank) } : undefined,
      });
      const info: EngineInfo = {
        backend: 'onnx', modelDir, config, fingerprint, weights: format,
        cskv: factors ? { file: factors.file, window, bits, kRanks: factors.layers.map((l) => l.k.rank), vRanks: factors.layers.map((l) => l.v.rank) } : null,
      };
      return new OnnxEngine(info, sessions, head, embedding, cache, options.chunkSize ?? DEFAULT_CHUNK);
    } catch (err) {
      await Promise.all(sessions.map((s) => s.release()));
      throw err;
    } finally {
      weights.close();
    }
  }

  get length(): number {
    return this.cache.length;
  }

  memory(): MemoryReport {
    return this.cache.memory();
  }

  async prefill(tokens: readonly number[], options: PrefillOptions = {}): Promise<Float32Array> {
    const vocab = this.info.config.vocabSize;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new RuntimeError('BAD_ARGUMENT', `token id ${t} is outside the vocabulary (0..${vocab - 1})`);
    }
    const wanted = Math.min(options.logits ?? 1, tokens.length);
    const logits = new Float32Array(wanted * vocab);
    const window = this.info.cskv?.window ?? this.chunkSize;
    let done = 0;
    while (done < tokens.length) {
      if (options.signal?.aborted) throw new CancelledError();
      const end = nextChunkEnd(this.length, this.length + tokens.length - done, this.chunkSize, window) - this.length + done;
      const chunk = tokens.slice(done, end);
      // Logit rows wanted from this chunk: those among the last `wanted` positions of the whole call.
      const firstWanted = Math.max(tokens.length - wanted, done);
      const rows = Math.max(0, end - firstWanted);
      const out = await this.forward(chunk, rows, options.observeKeysValues);
      if (rows > 0) logits.set(out, (firstWanted - (tokens.length - wanted)) * vocab);
      done = end;
      options.onProgress?.(done, tokens.length);
    }
    return logits;
  }

  private async forward(chunk: number[], logitRows: number, observe: PrefillOptions['observeKeysValues']): Promise<Float32Array> {
    const { config } = this.info;
    const T = chunk.length;
    const start = this.length;
    const S = start + T;
    const hd = config.headDim;
    const rope = this.ropeFor(S);
    const keysRotated = this.cache.shape.keysRotated === true;
    // Positions whose keys the graph rotates: the rebuilt compressed ones, or every one when keys are kept unrotated.
    const rotated = keysRotated ? this.cache.fullStart : S;
    const feeds: Record<string, ort.Tensor> = {
      cos_q: new ort.Tensor('float32', rope.cos.subarray(start * hd, S * hd), [T, hd]),
      sin_q: new ort.Tensor('float32', rope.sin.subarray(start * hd, S * hd), [T, hd]),
      mask: new ort.Tensor('float32', this.mask(start, T), [T, S]),
    };
    if (this.layers[0]!.inputNames.includes('cos_k')) {
      feeds.cos_k = new ort.Tensor('float32', rope.cos.subarray(0, rotated * hd), [rotated, hd]);
      feeds.sin_k = new ort.Tensor('float32', rope.sin.subarray(0, rotated * hd), [rotated, hd]);
    }
    let x = this.embed(chunk);
    const D = config.kvDim;
    const cskv = this.info.cskv;
    for (let i = 0; i < this.layers.length; i++) {
      const c = this.cache.inputs(i);
      feeds.x = new ort.Tensor('float32', x, [T, config.hiddenSize]);
      feeds.k_full = new ort.Tensor('float32', c.kFull, [c.fullTokens, D]);
      feeds.v_full = new ort.Tensor('float32', c.vFull, [c.fullTokens, D]);
      if (cskv) {
        feeds.c_k = features(c.kCompressed!, c.compressedTokens, cskv.kRanks[i]!);
        feeds.c_v = features(c.vCompressed!, c.compressedTokens, cskv.vRanks[i]!);
      }
      const out = await run(this.layers[i]!, feeds, `layer ${i}`);
      this.cache.append(i, T, data(keysRotated ? out.k_rot_new : out.k_new), data(out.v_new), cskv ? data(out.c_k_new) : undefined, cskv ? data(out.c_v_new) : undefined);
      observe?.(i, data(out.k_new), data(out.v_new), T);
      x = data(out.y);
    }
    this.cache.commit(T);
    this.history.push(...chunk);
    if (logitRows === 0) return new Float32Array(0);
    const H = config.hiddenSize;
    const tail = x.subarray((T - logitRows) * H);
    const out = await run(this.head, { x: new ort.Tensor('float32', tail, [logitRows, H]) }, 'output head');
    return data(out.logits);
  }

  private embed(tokens: number[]): Float32Array {
    const H = this.info.config.hiddenSize;
    const itemSize = this.embedding.dtype === 'F32' ? 4 : 2;
    const x = new Float32Array(tokens.length * H);
    tokens.forEach((t, i) => {
      const row = this.embedding.bytes.subarray(t * H * itemSize, (t + 1) * H * itemSize);
      x.set(toFloat32(row, this.embedding.dtype), i * H);
    });
    return x;
  }

  /** Additive mask [T, S]: causal, plus Mistral's sliding window when the config sets one. */
  private mask(start: number, T: number): Float32Array {
    const S = start + T;
    const sliding = this.info.config.slidingWindow;
    const mask = new Float32Array(T * S);
    for (let q = 0; q < T; q++) {
      const n = start + q;
      const row = mask.subarray(q * S, (q + 1) * S);
      row.fill(-Infinity, n + 1);
      if (sliding !== undefined && n - sliding + 1 > 0) row.fill(-Infinity, 0, n - sliding + 1);
    }
    return mask;
  }

  /** cos/sin for positions [0, S), reused across forwards unless the frequencies depend on the length. */
  private ropeFor(S: number): { cos: Float32Array; sin: Float32Array } {
    const config = this.info.config;
    const dynamic = ropeDependsOnLength(config);
    const current = this.rope;
    if (current && current.positions >= S && (!dynamic || current.seqLen === S)) return current;
    const positions = dynamic ? S : Math.max(S, (current?.positions ?? 0) * 2, 256);
    const tables = ropeTables(ropeFrequencies(config, S), config.headDim, Float64Array.from({ length: positions }, (_, i) => i));
    this.rope = { ...tables, positions, seqLen: S };
    return this.rope;
  }

  async truncate(length: number): Promise<void> {
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new RuntimeError('BAD_ARGUMENT', `cannot truncate a cache of ${this.length} tokens to ${length}`);
    }
    const { recomputeFrom } = this.cache.truncate(length);
    const redo = this.history.slice(recomputeFrom, length);
    this.history.length = recomputeFrom;
    if (redo.length > 0) await this.prefill(redo, { logits: 0 });
  }

  snapshot(): Uint8Array {
    return encodeSnapshot({ shape: this.cache.shape, history: this.history, state: this.cache.exportState() });
  }

  restore(bytes: Uint8Array): void {
    let snapshot: Snapshot;
    try {
      snapshot = decodeSnapshot(bytes);
    } catch (err) {
      throw new RuntimeError('BAD_ARGUMENT', `cannot restore the cache: ${(err as Error).message}`);
    }
    if (JSON.stringify(snapshot.shape) !== JSON.stringify(this.cache.shape) || snapshot.history.length !== snapshot.state.tokens) {
      throw new RuntimeError('BAD_ARGUMENT', 'cannot restore the cache: the snapshot was taken with another model or other CSKV settings');
    }
    this.cache.importState(snapshot.state);
    this.history.length = 0;
    for (const id of snapshot.history) this.history.push(id); // a spread would overflow the stack on long contexts
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.layers, this.head].map((s) => s.release()));
  }
}

function checkShape(weights: ModelWeights, name: string, shape: number[]): void {
  const info = weights.info(name);
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new ModelFormatError(weights.describedBy, `tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
}

function readLayerWeights(w: ModelWeights, c: ModelConfig, i: number): LayerWeights {
  const p = `model.layers.${i}.`;
  const H = c.hiddenSize, D = c.kvDim, Q = c.heads * c.headDim, I = c.intermediateSize;
  const read = (name: string, shape: number[]): Float32Array => w.readFloat32(p + name, shape);
  const optional = (present: boolean, name: string, shape: number[]): Float32Array | undefined => (present ? read(name, shape) : undefined);
  return {
    inputNorm: read('input_layernorm.weight', [H]),
    postNorm: read('post_attention_layernorm.weight', [H]),
    q: read('self_attn.q_proj.weight', [Q, H]),
    k: read('self_attn.k_proj.weight', [D, H]),
    v: read('self_attn.v_proj.weight', [D, H]),
    o: read('self_attn.o_proj.weight', [H, Q]),
    qBias: optional(c.qkvBias, 'self_attn.q_proj.bias', [Q]),
    kBias: optional(c.qkvBias, 'self_attn.k_proj.bias', [D]),
    vBias: optional(c.qkvBias, 'self_attn.v_proj.bias', [D]),
    oBias: optional(c.outputBias, 'self_attn.o_proj.bias', [H]),
    gate: read('mlp.gate_proj.weight', [I, H]),
    up: read('mlp.up_proj.weight', [I, H]),
    down: read('mlp.down_proj.weight', [H, I]),
    gateBias: optional(c.mlpBias, 'mlp.gate_proj.bias', [I]),
    upBias: optional(c.mlpBias, 'mlp.up_proj.bias', [I]),
    downBias: optional(c.mlpBias, 'mlp.down_proj.bias', [H]),
  };
}

async function createSession(graph: Uint8Array, options: ort.InferenceSession.SessionOptions, what: string): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(graph, options);
  } catch (err) {
    throw new RuntimeError('BACKEND', `onnxruntime could not load the graph of the ${what}: ${(err as Error).message}`);
  }
}

async function run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, what: string): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return await session.run(feeds);
  } catch (err) {
    throw new RuntimeError('BACKEND', `onnxruntime failed in the ${what}: ${(err as Error).message}`);
  }
}

function features(rows: Float32Array | Uint16Array, tokens: number, rank: number): ort.Tensor {
  return rows instanceof Uint16Array ? new ort.Tensor('float16', rows, [tokens, rank]) : new ort.Tensor('float32', rows, [tokens, rank]);
}

function data(value: ort.OnnxValue | undefined): Float32Array {
  return (value as ort.Tensor).data as Float32Array;
}
