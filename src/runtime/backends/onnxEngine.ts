// The CPU backend: onnxruntime sessions over the decoder layers (LAYERS_PER_SESSION consecutive layers each on the
// CPU, one each on WebGPU) plus one for the output head, each built from the checkpoint's weights at load time (no Python, no exported model files). The bi-branch cache lives in JS memory
// and is fed to each layer's graph as inputs, read in place: full-branch keys already rotated (unless the RoPE
// depends on the length) in head-major buffers a step only appends to (on the CPU), 16-bit compressed features as
// the fp16 rows the cache stores.
import * as os from 'node:os';
import { ort } from '../onnx/ort';
import type { MemoryReport, WebGpuMemory } from '../../protocol';
import { DEFAULTS } from '../../shared/settings';
import { BiBranchCache } from '../cache/biBranchCache';
import { type Snapshot, decodeSnapshot, encodeSnapshot } from '../cache/cacheSnapshot';
import { readCskvFile } from '../cskvFile';
import { type Engine, type EngineInfo, type EngineOptions, type PrefillOptions } from '../engine';
import { ModelFormatError, RuntimeError } from '../errors';
import { type ModelConfig, readModelConfig } from '../model/config';
import { modelFingerprint } from '../model/fingerprint';
import { type RopeFactors, type RopeTables, ropeDependsOnLength, ropeFrequencies, ropeScaleLength, ropeTableFactors, ropeTables } from '../model/rope';
import { DEFAULT_WEIGHT_FORMAT, WEIGHT_FORMATS, type WeightFormat, isWeightFormat } from '../model/weightFormat';
import { ModelWeights } from '../model/weights';
import { halfBitsToFloat } from '../half';
import { prefillInChunks } from './chunkedPrefill';
import { DeviceCache } from './deviceCache';
import { DeviceStepInputs } from './deviceStepInputs';
import { headMajorMasks } from './headMajorMasks';
import type { RowReader } from '../onnx/blockQuantizer';
import type { OnnxGraph } from '../onnx/graphBuilder';
import { type LayerGraphOptions, type LayerWeights, type LinearWeight, buildHeadGraph, buildLayersGraph, layerPrefix } from '../onnx/layerGraph';
import type { CompressedBits } from '../../protocol';

/**
 * Prefill chunk length. CPU 128: a chunk's attention scores (heads x chunk x history floats per layer, 58 MB at
 * 512 x 2048) stay closer to the caches, and the linear layers lose nothing at 128 rows. Measured on a 0.5B model,
 * q8, 2 threads, prefill of 2048 tokens, interleaved: CPU time 19.5 -> 14.9 s (full cache), 22.3 -> 16.9 s
 * (CSKV 16-bit) against 512; at 512 tokens 3.9 -> 3.6 s. WebGPU keeps 512 (fewer, larger dispatches).
 */
const DEFAULT_CHUNK: Record<ExecutionProvider['backend'], number> = { onnx: 128, webgpu: 512 };
/**
 * Decoder layers per onnxruntime session on the CPU (the head-major layout): a session run costs ~90 µs besides its
 * nodes, so a 24-layer model in sessions of 6 makes 4 runs a step, not 24. Larger groups hold more quantised
 * weights at once while their graph is built (6 layers of a 0.5B model: ~70 MB at q8).
 */
const LAYERS_PER_SESSION = 6;
/** Compressed keys' angle tables kept (compressedAngles). */
const KEPT_ANGLES = 2;
/** Rows of the embedding read per batch when it is checked at load (4 MB of f32 at a 7B model's width). */
const EMBEDDING_CHECK_ROWS = 256;

/** Where onnxruntime runs the graphs: the CPU provider (this backend), or WebGPU (webgpuEngine.ts). */
export interface ExecutionProvider {
  backend: 'onnx' | 'webgpu';
  providers: ort.InferenceSession.SessionOptions['executionProviders'];
  /**
   * Keep activations between layers and the cache's branches on the device between steps (deviceCache.ts): a
   * decode step sends up its embedding and reads back its logits. Every W tokens with CSKV, the JS cache's record
   * is read back and the block that leaves the window goes up compressed; snapshots read back the rows the record
   * lacks, and truncation cuts the copies on the device.
   */
  keepOnDevice?: boolean;
}

export const CPU_PROVIDER: ExecutionProvider = { backend: 'onnx', providers: ['cpu'] };

export class OnnxEngine implements Engine {
  private readonly history: number[] = [];
  private disposed = false;
  private rope: { cos: Float32Array; sin: Float32Array; positions: number; scaleLength: number } | undefined;
  /** The largest scratch estimate of any step so far (WebGPU's memory report). */
  private scratchBytes = 0;
  /**
   * The compressed keys' angles (cos_kc/sin_kc), most recent first: they change only when a block leaves
   * the window. A keystroke's prefill that crosses a block's end runs a chunk on each side of it, and the next
   * keystroke cuts back to the first, so the two are kept (at 30k tokens a pair is 8 MB, made anew in 30-300 ms on a
   * loaded 2-core machine).
   */
  private compressedAngles: Array<{ positions: number; cos: ort.Tensor; sin: ort.Tensor }> = [];

  private constructor(
    readonly info: EngineInfo,
    private readonly layers: ort.InferenceSession[],
    /** Consecutive decoder layers per session (layerGraph.ts's buildLayersGraph): the last session may have fewer. */
    private readonly layersPerSession: number,
    private readonly head: ort.InferenceSession,
    /** Open for the engine's life: embedding rows are read from the file per lookup, never held (0.27 GB for a 0.5B model in bf16). */
    private readonly weights: ModelWeights,
    private readonly cache: BiBranchCache,
    private readonly chunkSize: number,
    private readonly device: DeviceCache | undefined,
    private readonly deviceInputs: DeviceStepInputs | undefined,
    /** The graphs' weights as handed to onnxruntime. */
    private readonly weightBytes: number,
  ) {}

  static async load(modelDir: string, options: EngineOptions = {}, provider: ExecutionProvider = CPU_PROVIDER): Promise<OnnxEngine> {
    const format = options.weights ?? DEFAULT_WEIGHT_FORMAT;
    if (!isWeightFormat(format)) throw new RuntimeError('BAD_ARGUMENT', `weights must be one of ${WEIGHT_FORMATS.join(', ')}, got "${String(format)}"`);
    if (format === 'f16' && provider.backend !== 'webgpu') throw new RuntimeError('BAD_ARGUMENT', 'f16 weights need the webgpu backend (a GPU with shader-f16); the CPU backend takes f32, q8 or q4');
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
      const onDevice = provider.keepOnDevice === true;
      // The CPU graphs read the full branch in place from head-major buffers, so a step copies no history; the
      // rows layout stays for WebGPU (which keeps the branch on the device as rows it re-feeds) and for unrotated
      // keys (every step rotates all of them anyway). Measured on a 0.5B model's 24 attention blocks alone, one
      // decode step at 2048 tokens on 2 loaded cores: 28-43 -> 8-13 ms (onnxruntime's GroupQueryAttention with a
      // shared past/present buffer: 68-77 ms); the whole q8 step's CPU time 96 -> 77 ms, about what it is at 512.
      const fullLayout = provider.backend === 'onnx' && keysRotated ? 'heads' as const : 'rows' as const;
      // With 8/4-bit weights the head-major branch holds fp16 (half the bytes, as llama.cpp's default cache); the f32
      // weights keep an f32 one, so that path stays within 1e-4 of the reference.
      const fullType = fullLayout === 'heads' && format !== 'f32' ? 'float16' as const : 'float32' as const;
      const graphOptions = {
        weights: format, keysRotated, compressedType: compressedType(provider, bits, window), fullBranchOutputs: onDevice, fullLayout, fullType,
      };
      // No spinning: idle pool threads that spin between the many small per-layer runs take the cores from Node's
      // own thread (and from the editor beside the sidecar). Measured on 2 cores: decode of a 0.5B model at 512
      // tokens 331 -> 122 ms/token, prefill 124 -> 152 tokens/s.
      // No memory arena: each of the layers + 1 sessions would keep an arena as large as its biggest run's
      // intermediates (a 512-token prefill chunk's attention scores), never returned. Measured on a 0.5B model, q8,
      // after a 2048-token prefill: peak RSS 5.2 -> 1.6 GiB.
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        executionProviders: provider.providers, graphOptimizationLevel: 'all', enableCpuMemArena: false,
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      };
      // One compute thread per core, said explicitly: onnxruntime's own default (0) ran one thread on a 2-vCPU VM (AMD
      // EPYC, 2 cores of 1 thread), where 2 threads measured prefill of 2048 tokens 10.0 -> 5.8 s and a decode step at
      // 2048 tokens 42.8 -> 34.5 ms (0.5B shape, q8, CSKV 16-bit).
      sessionOptions.intraOpNumThreads = options.threads ?? os.availableParallelism();
      const H = config.hiddenSize;
      const embeddingName = 'model.embed_tokens.weight';
      checkShape(weights, embeddingName, [config.vocabSize, H]);
      weights.readRows(embeddingName, config.vocabSize - 1, 1); // looked up row by row later: its dtype is checked now
      // Untied, the table is read whole nowhere else: read through once, a batch of rows at a time, so that a NaN or
      // an infinity in it is refused at load (every read is checked) and not in the middle of a prompt. Tied, the
      // head's read below covers it.
      if (!config.tieEmbeddings) {
        for (let row = 0; row < config.vocabSize; row += EMBEDDING_CHECK_ROWS) weights.readRows(embeddingName, row, Math.min(EMBEDDING_CHECK_ROWS, config.vocabSize - row));
      }
      const headName = config.tieEmbeddings ? embeddingName : 'lm_head.weight';
      checkShape(weights, headName, [config.vocabSize, H]);
      // The head first: the largest session, and its weights exist up to three times while it is created (f32 or
      // our quantised codes, onnxruntime's copy, its prepacked form), best while little else is resident. q8/q4
      // quantise it from the file a batch of rows at a time: the vocabulary-sized matrix is never read whole.
      const headWeight = format === 'f32' || format === 'f16' ? weights.readFloat32(headName, [config.vocabSize, H])
        : (format === 'q8' ? weights.readQ8Blocks(headName, [config.vocabSize, H]) : undefined) ?? rowsInBatches(weights, headName, config.vocabSize, H);
      const headGraph = buildHeadGraph(config, weights.readFloat32('model.norm.weight', [H]), headWeight, format);
      let weightBytes = headGraph.weightBytes;
      const head = await createSession(headGraph, sessionOptions, 'output head');
      sessions.push(head);
      const perSession = fullLayout === 'heads' ? LAYERS_PER_SESSION : 1;
      for (let first = 0; first < config.layers; first += perSession) {
        // One layer's f32 weights live only while its nodes are added (quantised there for q8/q4); the graph and
        // its buffers are garbage once onnxruntime has its own copy.
        const count = Math.min(perSession, config.layers - first);
        const graph = buildLayersGraph(config, count, (j) => ({ weights: readLayerWeights(weights, config, first + j, format), factors: factors?.layers[first + j] }), graphOptions);
        const what = count === 1 ? `layer ${first}` : `layers ${first}-${first + count - 1}`;
        weightBytes += graph.weightBytes;
        const layerOptions = { ...sessionOptions };
        // Every output stays on the device: the rows for the next layer (or the head) and the branches fed back
        // are kept, the others dropped unread (onnxruntime-node cannot leave outputs unfetched when some are on
        // the GPU: "Output count mismatch").
        if (onDevice) layerOptions.preferredOutputLocation = 'gpu-buffer';
        sessions.push(await createSession(graph, layerOptions, what));
      }
      const cache = new BiBranchCache({
        layers: config.layers, kvDim: config.kvDim, window, bits, keysRotated,
        ranks: factors ? { k: factors.layers.map((l) => l.k.rank), v: factors.layers.map((l) => l.v.rank) } : undefined,
      }, fullLayout === 'heads' ? { kvHeads: config.kvHeads, headDim: config.headDim, half: fullType === 'float16' } : undefined);
      const device = onDevice ? await DeviceCache.create(cache.shape, sessionOptions) : undefined;
      const deviceInputs = onDevice ? await DeviceStepInputs.create(sessionOptions) : undefined;
      const info: EngineInfo = {
        backend: provider.backend, modelDir, config, fingerprint, weights: format,
        cskv: factors ? { file: factors.file, window, bits, kRanks: factors.layers.map((l) => l.k.rank), vRanks: factors.layers.map((l) => l.v.rank) } : null,
      };
      return new OnnxEngine(info, sessions.slice(1), perSession, head, weights, cache, options.chunkSize ?? DEFAULT_CHUNK[provider.backend], device, deviceInputs, weightBytes);
    } catch (err) {
      await Promise.all(sessions.map((s) => s.release()));
      weights.close();
      throw err;
    }
  }

  /** Tokens held: the device copies run ahead of the JS cache until it is flushed. */
  get length(): number {
    return this.device?.held?.tokens ?? this.cache.length;
  }

  memory(): MemoryReport {
    return this.cache.memory(this.device?.held);
  }

  webgpuMemory(): WebGpuMemory | undefined {
    if (this.info.backend !== 'webgpu') return undefined;
    // Without the device copies (the upload path) the cache crosses every step and nothing of it stays there.
    const held = this.device?.bytes() ?? { full: 0, pending: 0, compressed: 0 };
    return { weightBytes: this.weightBytes, fullBytes: held.full, pendingBytes: held.pending, compressedBytes: held.compressed, scratchBytes: this.scratchBytes };
  }

  async prefill(tokens: readonly number[], options: PrefillOptions = {}): Promise<Float32Array> {
    // The final length is known: the cache's buffers and the RoPE table are sized for it once, not grown chunk by
    // chunk (glibc keeps each outgrown buffer in the process). Measured on a 0.5B model, q8 weights, full cache, an
    // 8192-token prompt: RSS after the prefill 2.23 -> 1.40 GiB, peak 2.35 -> 1.51 GiB (1.10 after load). With the
    // cache on the device, the JS cache holds only what is read back.
    const final = this.length + tokens.length;
    if (!this.device) this.cache.reserve(final);
    if (!ropeDependsOnLength(this.info.config)) this.ropeFor(final);
    return prefillInChunks(tokens, options, {
      vocab: this.info.config.vocabSize, length: this.length, chunkSize: this.chunkSize, window: this.info.cskv?.window ?? this.chunkSize,
    }, (chunk, rows) => this.forward(chunk, rows, options.observeKeysValues));
  }

  private async forward(chunk: number[], logitRows: number, observe: PrefillOptions['observeKeysValues']): Promise<Float32Array> {
    const { config } = this.info;
    const T = chunk.length;
    await this.mirrorOnDevice();
    const start = this.length;
    const S = start + T;
    const hd = config.headDim;
    const keysRotated = this.cache.shape.keysRotated === true;
    const fullStart = this.device?.held?.compressedTokens ?? this.cache.fullStart;
    // Positions whose keys the graph rotates: the rebuilt compressed ones, or every one when keys are kept unrotated.
    const rotated = keysRotated ? fullStart : S;
    const headMajor = this.cache.fullLayout === 'heads';
    // Head-major: the mask depends on the buffers' capacity, the same in every layer (they grow alike, each after
    // its own run: the chunk's keys are read from the graph's own, never from slots reserved for them).
    const masks = new Map<number, Record<string, ort.Tensor>>();
    const maskFor = (capacity: number): Record<string, ort.Tensor> => {
      let mask = masks.get(capacity);
      if (!mask) {
        masks.set(capacity, mask = headMajorMasks({
          start, T, Sc: this.cache.fullStart, C: capacity, nRep: config.heads / config.kvHeads, compressed: this.info.cskv !== null, sliding: config.slidingWindow,
        }));
      }
      return mask;
    };
    const layerInputs = this.layers[0]!.inputNames;
    const feeds: Record<string, ort.Tensor> = {};
    if (!this.deviceInputs) {
      const rope = this.ropeFor(S);
      feeds.cos_q = new ort.Tensor('float32', rope.cos.subarray(start * hd, S * hd), [T, hd]);
      feeds.sin_q = new ort.Tensor('float32', rope.sin.subarray(start * hd, S * hd), [T, hd]);
      if (!headMajor) feeds.mask = new ort.Tensor('float32', this.mask(start, T), [T, S]);
      if (layerInputs.includes('cos_k')) {
        feeds.cos_k = new ort.Tensor('float32', rope.cos.subarray(0, rotated * hd), [rotated, hd]);
        feeds.sin_k = new ort.Tensor('float32', rope.sin.subarray(0, rotated * hd), [rotated, hd]);
      } else if (layerInputs.includes('cos_kc')) {
        // Keys are kept rotated only where the angles do not depend on the length, so a position's angles never change.
        const angles = this.compressedAngles.find((a) => a.positions === rotated) ?? {
          positions: rotated,
          cos: new ort.Tensor('float32', halfAngles(rope.cos, rotated, hd), [rotated + 1, hd / 2]),
          sin: new ort.Tensor('float32', halfAngles(rope.sin, rotated, hd), [rotated + 1, hd / 2]),
        };
        this.compressedAngles = [angles, ...this.compressedAngles.filter((a) => a !== angles)].slice(0, KEPT_ANGLES);
        feeds.cos_kc = angles.cos;
        feeds.sin_kc = angles.sin;
      }
    }
    const cskv = this.info.cskv;
    const device = this.device;
    this.scratchBytes = Math.max(this.scratchBytes, layerScratchBytes(config, T, S));
    // The rows between layers: in JS memory, or a gpu-buffer tensor where the provider keeps them on the device.
    let x: Float32Array = this.embed(chunk);
    let xOnDevice: ort.Tensor | undefined;
    let stepOnDevice: Record<string, ort.Tensor> = {};
    try {
      if (this.deviceInputs) {
        stepOnDevice = await this.deviceInputs.feeds({
          rope: this.deviceRope(S), headDim: hd, start, T, rotated: layerInputs.includes('cos_k') ? rotated : undefined,
          hidden: this.slidingHidden(start), mask: () => this.mask(start, T),
        });
        Object.assign(feeds, stepOnDevice);
      }
      for (let s = 0; s < this.layers.length; s++) {
        const first = s * this.layersPerSession;
        const count = Math.min(this.layersPerSession, config.layers - first);
        const runFeeds: Record<string, ort.Tensor> = { ...feeds, x: xOnDevice ?? new ort.Tensor('float32', x, [T, config.hiddenSize]) };
        if (device) Object.assign(runFeeds, device.feeds(first)); // one layer per session on the device
        for (let j = 0; !device && j < count; j++) {
          const layerFeeds = this.hostCacheFeeds(first + j, maskFor, layerPrefix(j, count));
          // The masks are shared by the session's layers: their caches must have one capacity (they grow alike).
          if (j > 0 && layerFeeds.mask_cache !== runFeeds.mask_cache) throw new Error(`layers ${first}-${first + count - 1} hold caches of different capacities`);
          Object.assign(runFeeds, layerFeeds);
        }
        const out = await run(this.layers[s]!, runFeeds, count === 1 ? `layer ${first}` : `layers ${first}-${first + count - 1}`);
        for (let j = 0; j < count; j++) {
          const i = first + j;
          const p = layerPrefix(j, count);
          if (device) {
            if (observe) observe(i, await device.read(out.k_new as ort.Tensor), await device.read(out.v_new as ort.Tensor), T);
            device.take(i, out);
          } else {
            const [kRows, vRows] = headMajor ? [appendRows(out[`${p}k_append`]), appendRows(out[`${p}v_append`])] : [data(keysRotated ? out[`${p}k_rot_new`] : out[`${p}k_new`]), data(out[`${p}v_new`])];
            this.cache.append(i, T, kRows, vRows, cskv ? data(out[`${p}c_k_new`]) : undefined, cskv ? data(out[`${p}c_v_new`]) : undefined);
            observe?.(i, data(out[`${p}k_new`]), data(out[`${p}v_new`]), T);
          }
        }
        xOnDevice?.dispose();
        const y = out.y as ort.Tensor;
        xOnDevice = y.location === 'gpu-buffer' ? y : undefined;
        if (!xOnDevice) x = data(y);
      }
    } catch (err) {
      xOnDevice?.dispose();
      // The device copies may be a step ahead in some layers: the cache takes what they held before the step, and
      // the next step uploads from it.
      await this.dropDeviceCopies();
      throw err;
    } finally {
      for (const t of Object.values(stepOnDevice)) if (t.location === 'gpu-buffer') t.dispose();
    }
    this.history.push(...chunk);
    if (device) {
      try {
        await device.commit(T, this.cache);
      } catch (err) {
        xOnDevice?.dispose();
        await this.dropDeviceCopies();
        throw err;
      }
    } else {
      this.cache.commit(T);
    }
    try {
      return await this.logits(x, xOnDevice, T, logitRows);
    } finally {
      xOnDevice?.dispose();
    }
  }

  /** The head over the last `rows` of the last layer's T rows: in JS memory, or still on the device. */
  private async logits(x: Float32Array, xOnDevice: ort.Tensor | undefined, T: number, rows: number): Promise<Float32Array> {
    if (rows === 0) return new Float32Array(0);
    const H = this.info.config.hiddenSize;
    // A decode step's row goes to the head where it is; a prefill chunk's tail is read back first (rows x H).
    const input = xOnDevice && rows === T ? xOnDevice
      : new ort.Tensor('float32', xOnDevice ? await this.device!.read(xOnDevice, T - rows) : x.subarray((T - rows) * H), [rows, H]);
    const out = await run(this.head, { x: input }, 'output head');
    return data(out.logits);
  }

  /** Uploads the cache to the device copies when they do not hold it. */
  private async mirrorOnDevice(): Promise<void> {
    try {
      await this.device?.mirror(this.cache);
    } catch (err) {
      throw new RuntimeError('BACKEND', `the cache could not be uploaded to the GPU: ${(err as Error).message}`);
    }
  }

  /**
   * Brings the JS cache up to what the device copies hold, and drops the copies (the next step uploads them). A
   * read that fails loses the rows not read back: the engine then holds what the JS cache holds.
   */
  private async dropDeviceCopies(): Promise<void> {
    if (!this.device) return;
    try {
      await this.device.flush(this.cache);
    } catch {
      this.history.length = this.cache.length;
    }
    this.device.clear();
  }

  /**
   * Layer `layer`'s cache inputs from JS memory (the CPU backend; WebGPU uploading every step): the head-major
   * buffers read in place with the masks for their capacity (`maskFor`), or the full branch's rows; the cache's
   * names with the layer's prefix in its session's graph (layerPrefix).
   */
  private hostCacheFeeds(layer: number, maskFor: (capacity: number) => Record<string, ort.Tensor>, prefix: string): Record<string, ort.Tensor> {
    const c = this.cache.inputs(layer);
    const { kvDim: D, kvHeads, headDim } = this.info.config;
    const feeds: Record<string, ort.Tensor> = {};
    if (this.cache.fullLayout === 'heads') {
      const capacity = c.capacity!;
      Object.assign(feeds, maskFor(capacity));
      feeds[`${prefix}k_cache`] = cacheTensor(c.kFull, [kvHeads, headDim, capacity]);
      feeds[`${prefix}v_cache`] = cacheTensor(c.vFull, [kvHeads, capacity, headDim]);
    } else {
      feeds[`${prefix}k_full`] = cacheTensor(c.kFull, [c.fullTokens, D]);
      feeds[`${prefix}v_full`] = cacheTensor(c.vFull, [c.fullTokens, D]);
    }
    const cskv = this.info.cskv;
    if (cskv) {
      const backend = this.info.backend as ExecutionProvider['backend'];
      // Dequantised features are the cache's scratch, rewritten by the next layer's inputs(): a session of several
      // layers takes its own copy.
      const own = (rows: Float32Array | Uint16Array): Float32Array | Uint16Array => (prefix !== '' && rows instanceof Float32Array ? rows.slice() : rows);
      feeds[`${prefix}c_k`] = features(own(c.kCompressed!), c.compressedTokens, cskv.kRanks[layer]!, backend);
      feeds[`${prefix}c_v`] = features(own(c.vCompressed!), c.compressedTokens, cskv.vRanks[layer]!, backend);
    }
    return feeds;
  }

  private embed(tokens: number[]): Float32Array {
    const H = this.info.config.hiddenSize;
    const x = new Float32Array(tokens.length * H);
    tokens.forEach((t, i) => x.set(this.weights.readRows('model.embed_tokens.weight', t, 1), i * H));
    return x;
  }

  /** Additive mask [T, S]: causal, plus Mistral's sliding window when the config sets one. */
  private mask(start: number, T: number): Float32Array {
    const S = start + T;
    const mask = new Float32Array(T * S);
    for (let q = 0; q < T; q++) {
      const n = start + q;
      const row = mask.subarray(q * S, (q + 1) * S);
      row.fill(-Infinity, n + 1);
      row.fill(-Infinity, 0, this.slidingHidden(n));
    }
    return mask;
  }

  /** Positions [0, result) that the query at position n no longer sees: Mistral's sliding window, else none. */
  private slidingHidden(n: number): number {
    const sliding = this.info.config.slidingWindow;
    return sliding === undefined ? 0 : Math.max(0, n - sliding + 1);
  }

  /**
   * cos/sin for positions [0, S), reused across forwards while the frequencies stay (growing by doubling); dynamic
   * NTK's change with every length past the original context, where tables are made for S positions exactly.
   */
  private ropeFor(S: number): RopeTables {
    const config = this.info.config;
    const scaleLength = ropeScaleLength(config, S);
    const current = this.rope;
    if (current && current.positions >= S && current.scaleLength === scaleLength) return current;
    const positions = this.ropeGrows(S) ? S : Math.max(S, (current?.positions ?? 0) * 2, 256);
    const tables = ropeTables(ropeFrequencies(config, S), config.headDim, Float64Array.from({ length: positions }, (_, i) => i));
    this.rope = { ...tables, positions, scaleLength };
    return this.rope;
  }

  /** Whether the frequencies at S differ from those of every shorter length (dynamic NTK past its original context). */
  private ropeGrows(S: number): boolean {
    return ropeScaleLength(this.info.config, S) > ropeScaleLength(this.info.config, 0);
  }

  /** The device's tables: where they change with every length, their factors, composed on the device (no [S, hd] upload per step). */
  private deviceRope(S: number): RopeTables | RopeFactors {
    const config = this.info.config;
    return this.ropeGrows(S) ? ropeTableFactors(ropeFrequencies(config, S), config.headDim, S) : this.ropeFor(S);
  }

  async truncate(length: number): Promise<void> {
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new RuntimeError('BAD_ARGUMENT', `cannot truncate a cache of ${this.length} tokens to ${length}`);
    }
    const { recomputeFrom } = await this.truncateCache(length);
    const redo = this.history.slice(recomputeFrom, length);
    this.history.length = recomputeFrom;
    if (redo.length > 0) await this.prefill(redo, { logits: 0 });
  }

  truncationRecomputes(length: number): boolean {
    const held = this.device?.held;
    // The device's copies are cut by the policy alone (no kept rows there).
    if (held) return length < held.compressedTokens && length % this.cache.shape.window !== 0;
    return this.cache.truncationPlan(length).recomputeFrom < length;
  }

  /**
   * Cuts the cache to `length` (whole blocks inside the compressed branch): on the device where its copies hold it,
   * so nothing is read back and the next step uploads only its own tokens; else the JS record. Where the device cut
   * fails, the copies are read back and dropped, and the record is cut.
   */
  private async truncateCache(length: number): Promise<{ recomputeFrom: number }> {
    if (this.device?.held) {
      try {
        return await this.device.truncate(length, this.cache);
      } catch {
        await this.dropDeviceCopies();
        if (length > this.length) throw new RuntimeError('BACKEND', `the cache lost its last tokens on the GPU; ${this.length} are left, ${length} were to be kept`);
      }
    }
    return this.cache.truncate(length);
  }

  async snapshot(): Promise<Uint8Array> {
    try {
      await this.device?.flush(this.cache);
    } catch (err) {
      throw new RuntimeError('BACKEND', `the cache could not be read back from the GPU: ${(err as Error).message}`);
    }
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
    this.device?.clear();
    this.cache.importState(snapshot.state);
    this.history.length = 0;
    for (const id of snapshot.history) this.history.push(id); // a spread would overflow the stack on long contexts
  }

  async dispose(): Promise<void> {
    if (this.disposed) return; // a second close could close a descriptor reused by someone else
    this.disposed = true;
    await this.device?.dispose();
    await this.deviceInputs?.dispose();
    await Promise.all([...this.layers, this.head].map((s) => s.release()));
    this.weights.close();
  }
}

/**
 * An estimate of one layer graph's activations for a chunk of T tokens over S positions (f32): the rows in and
 * out, the projections, the keys and values of every position (the branches joined, compressed keys rebuilt),
 * the scores and their softmax, the MLP's three intermediates. The provider frees them between runs.
 */
function layerScratchBytes(c: ModelConfig, T: number, S: number): number {
  const rows = T * (3 * c.hiddenSize + c.heads * c.headDim * 2 + 2 * c.kvDim + 3 * c.intermediateSize);
  return 4 * (rows + 2 * S * c.kvDim + 2 * c.heads * T * S);
}

/**
 * The first halves of a RoPE table's first `positions` rows [positions, hd] (the halves are equal), as
 * RotaryEmbedding's cache [positions + 1, hd/2], the last row 0: the head-major graphs turn the compressed keys
 * they rebuild plus one padding key (layerGraph.ts).
 */
function halfAngles(table: Float32Array, positions: number, hd: number): Float32Array {
  const half = hd / 2;
  const out = new Float32Array((positions + 1) * half);
  for (let p = 0; p < positions; p++) out.set(table.subarray(p * hd, p * hd + half), p * half);
  return out;
}

function checkShape(weights: ModelWeights, name: string, shape: number[]): void {
  const info = weights.info(name);
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new ModelFormatError(weights.describedBy, `tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
}

function readLayerWeights(w: ModelWeights, c: ModelConfig, i: number, format: WeightFormat): LayerWeights {
  const p = `model.layers.${i}.`;
  const H = c.hiddenSize, D = c.kvDim, Q = c.heads * c.headDim, I = c.intermediateSize;
  const read = (name: string, shape: number[]): Float32Array => w.readFloat32(p + name, shape);
  const optional = (present: boolean, name: string, shape: number[]): Float32Array | undefined => (present ? read(name, shape) : undefined);
  // q8 from a Q8_0 GGUF: the file's own blocks, exactly (never dequantised and quantised again).
  const linear = (name: string, shape: [number, number]): LinearWeight => (format === 'q8' ? w.readQ8Blocks(p + name, shape) : undefined) ?? read(name, shape);
  return {
    inputNorm: read('input_layernorm.weight', [H]),
    postNorm: read('post_attention_layernorm.weight', [H]),
    q: linear('self_attn.q_proj.weight', [Q, H]),
    k: linear('self_attn.k_proj.weight', [D, H]),
    v: linear('self_attn.v_proj.weight', [D, H]),
    o: linear('self_attn.o_proj.weight', [H, Q]),
    qBias: optional(c.qkvBias, 'self_attn.q_proj.bias', [Q]),
    kBias: optional(c.qkvBias, 'self_attn.k_proj.bias', [D]),
    vBias: optional(c.qkvBias, 'self_attn.v_proj.bias', [D]),
    oBias: optional(c.outputBias, 'self_attn.o_proj.bias', [H]),
    gate: linear('mlp.gate_proj.weight', [I, H]),
    up: linear('mlp.up_proj.weight', [I, H]),
    down: linear('mlp.down_proj.weight', [H, I]),
    gateBias: optional(c.mlpBias, 'mlp.gate_proj.bias', [I]),
    upBias: optional(c.mlpBias, 'mlp.up_proj.bias', [I]),
    downBias: optional(c.mlpBias, 'mlp.down_proj.bias', [H]),
  };
}

/** Rows of a [rows, columns] weight read from the file a batch at a time, for a quantiser that asks for them in order. */
function rowsInBatches(weights: ModelWeights, name: string, rows: number, columns: number, batch = 1024): RowReader {
  let first = 0;
  let values: Float32Array = new Float32Array(0);
  return (row) => {
    if (row < first || row >= first + values.length / columns) {
      first = row - (row % batch);
      values = weights.readRows(name, first, Math.min(batch, rows - first));
    }
    return values.subarray((row - first) * columns, (row - first + 1) * columns);
  };
}

async function createSession(graph: OnnxGraph, options: ort.InferenceSession.SessionOptions, what: string): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(graph.model, { ...options, externalData: graph.externalData });
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

/**
 * How the layer graphs take the compressed features. 16-bit rows reach the CPU graph as the fp16 rows the cache
 * stores (see float16Tensor), not widened per step: widening every compressed token of every layer was a third of
 * a 2048-token CSKV step. WebGPU takes them as f32 (fp16 there needs the adapter's shader-f16), widened once as
 * they reach the device, or per step when it uploads them; quantised ones as codes on the device (packedCodes.ts).
 */
function compressedType(provider: ExecutionProvider, bits: CompressedBits, window: number): LayerGraphOptions['compressedType'] {
  if (bits === 16) return halfFeatures(provider.backend) ? 'float16' : 'float32';
  return provider.keepOnDevice === true ? { codes: bits, window } : 'float32';
}

/** Whether a backend's graphs take the 16-bit compressed rows as float16 (else they are widened to f32 per step). */
function halfFeatures(backend: ExecutionProvider['backend']): boolean {
  return backend === 'onnx';
}

function features(rows: Float32Array | Uint16Array, tokens: number, rank: number, backend: ExecutionProvider['backend']): ort.Tensor {
  const n = tokens * rank;
  if (!(rows instanceof Uint16Array)) return new ort.Tensor('float32', rows.subarray(0, n), [tokens, rank]);
  if (halfFeatures(backend)) return float16Tensor(rows.subarray(0, n), [tokens, rank]);
  const wide = new Float32Array(n);
  for (let i = 0; i < n; i++) wide[i] = halfBitsToFloat(rows[i]!);
  return new ort.Tensor('float32', wide, [tokens, rank]);
}

/**
 * A float16 tensor over fp16 bit patterns, read in place. Where the JavaScript engine has Float16Array (Node 24,
 * code-server's), onnxruntime-common wraps the bits in one, and onnxruntime-node 1.30's binding reads no bytes from
 * it ("not enough space: expected 192, got 0"); the binding takes the `data` it is handed, so it is handed the
 * Uint16Array itself (what it reads everywhere else). Checked with the CLI under Node 20 and Node 24.
 */
function float16Tensor(bits: Uint16Array, dims: number[]): ort.Tensor {
  const tensor = new ort.Tensor('float16', bits, dims);
  if (!(tensor.data instanceof Uint16Array)) Object.defineProperty(tensor, 'data', { value: bits });
  return tensor;
}

/** The cache's rows as a tensor read in place: f32, or fp16 bits. */
function cacheTensor(rows: Float32Array | Uint16Array, dims: number[]): ort.Tensor {
  return rows instanceof Uint16Array ? float16Tensor(rows, dims) : new ort.Tensor('float32', rows, dims);
}

/** A graph's rows for the cache: f32, or fp16 as bits (onnxruntime-common may hand fp16 out as a Float16Array). */
function appendRows(value: ort.OnnxValue | undefined): Float32Array | Uint16Array {
  const tensor = value as ort.Tensor;
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  const values = tensor.data as unknown as ArrayBufferView & { length: number };
  return new Uint16Array(values.buffer, values.byteOffset, values.length);
}

function data(value: ort.OnnxValue | undefined): Float32Array {
  return (value as ort.Tensor).data as Float32Array;
}
