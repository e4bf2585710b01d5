// CUDA benchmark on a Qwen2.5-7B-shaped model (28 layers, hidden 3584, 28 heads, 4 kv heads, vocab 152064) with
// random bf16 weights, on the GPU machine: this engine with the full cache, with CSKV density 0.2 at 16 bits and
// at 4 bits, and Hugging Face transformers (SDPA, bf16) in the same run (test/gpu/transformers_peer.py, which
// also measures the copy bandwidth and the bf16 GEMM rate that the floors divide by). Per context: prefill
// tokens/s, decode ms/token (device sampling, greedy), KV bytes per token, peak GPU memory, and the floors:
//   decode_floor_ms  = (weight bytes + KV bytes held) / copy bandwidth
//   prefill_floor_s  = 2 * parameters * tokens (+ attention FLOPs) / bf16 GEMM rate
// With --q8 CACHES (default full) those caches run again with 8-bit blockwise weights (--weights q8: ~8.6 GB instead
// of ~15 GB); each run names its weights. With --fused CACHES (default cskv-4) those caches run again with the fused
// decode attention (native/src/kernels/fusedAttention.cuh, an engine option until checked): its decode ms against
// the default rebuild path's in the same run; each run names its decode_attention. With --q4 CACHES (default full)
// those caches run again with 4-bit blockwise weights (--weights q4: ~5.5 GB). With --fused-prefill CACHES (default
// cskv-4, run last) those caches run again with the fused prefill attention (native/src/kernels/fusedPrefillAttention.cuh,
// an engine option until checked): its prefill tok/s against the rebuild path's; each run names its prefill_attention.
// Writes the JSON after every point (issue 11's format) and prints a table at the end.
//   node out/bench/cuda.js --out DIR [--contexts 4096,32768] [--decode 16] [--peer FILE.json] [--caches full,cskv-16,cskv-4] [--q8 full]
//                          [--fused cskv-4] [--q4 full] [--fused-prefill cskv-4]
// Weights are one random bf16 tile repeated (never zeros: see .library/device/METHOD.md); the engine is driven
// through the addon directly, as the model never exists as files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { q4Bytes } from '../src/runtime/backends/cudaQ4Weights';
import { q8Bytes } from '../src/runtime/backends/cudaQ8Weights';
import type { CudaWeightFormat } from '../src/runtime/backends/cudaWeightFormat';
import { type NativeAddon, type NativeCudaEngine, type NativeModelSpec, loadNativeAddon } from '../src/runtime/backends/nativeAddon';
import { floatToHalfBits } from '../src/runtime/half';
import { mulberry32 } from '../src/runtime/random';

const SHAPE = { hidden: 3584, layers: 28, heads: 28, kvHeads: 4, headDim: 128, intermediate: 18944, vocab: 152064 };
const DENSITY_RANK = 102; // 0.2 of kvDim 512
type Cache = 'full' | 'cskv-16' | 'cskv-4';
type AttentionPath = 'rebuild' | 'fused';

interface Run {
  engine: 'cskv-code' | 'transformers';
  cache: Cache;
  weights?: CudaWeightFormat;
  decode_attention?: AttentionPath;
  prefill_attention?: AttentionPath;
  context: number;
  prefill_tok_s: number;
  prefill_floor_tok_s?: number;
  decode_ms: number;
  decode_floor_ms?: number;
  kv_bytes_per_token: number;
  peak_gpu_bytes: number;
  error?: string;
}

interface Ceilings { copy_bytes_per_s: number; bf16_gemm_flop_per_s: number }

function randomTile(bytes: number): Uint8Array {
  // bf16 values ~N(0, 0.02): weights at a realistic scale so activations stay finite over 28 layers.
  const next = mulberry32(1234);
  const tile = new Uint16Array(bytes / 2);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < tile.length; i++) {
    f[0] = 0.02 * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    tile[i] = u[0]! >>> 16;
  }
  return new Uint8Array(tile.buffer);
}

const tensors = new Map<number, Uint8Array>();
/** `elements` bf16 values cut from the tile repeated (one host array per size, reused for every layer). */
function bf16Tensor(tile: Uint8Array, elements: number): Uint8Array {
  let out = tensors.get(elements);
  if (!out) {
    out = new Uint8Array(elements * 2);
    for (let at = 0; at < out.length; at += tile.length) out.set(tile.subarray(0, Math.min(tile.length, out.length - at)), at);
    tensors.set(elements, out);
  }
  return out;
}

const q8Tensors = new Map<number, { codes: Int8Array; scales: Float32Array }>();
/** A q8 weight [n, k] (k a multiple of 32) cut from the bf16 tile's bytes: random codes, scales for ~N(0, 0.02) weights. */
function q8Tensor(tile: Uint8Array, n: number, k: number): { codes: Int8Array; scales: Float32Array } {
  let out = q8Tensors.get(n * k);
  if (!out) {
    const codes = new Int8Array(n * k);
    for (let at = 0; at < codes.length; at += tile.length) codes.set(new Int8Array(tile.buffer, 0, Math.min(tile.length, codes.length - at)), at);
    out = { codes, scales: new Float32Array(n * k / 32).fill(0.02 * 1.7 / 127) };
    q8Tensors.set(n * k, out);
  }
  return out;
}

const q4Tensors = new Map<number, { codes: Uint8Array; scaleMin: Uint16Array }>();
/** A q4 weight [n, k] (k a multiple of 32) cut from the bf16 tile's bytes: random codes, (scale, min) for ~N(0, 0.02) weights. */
function q4Tensor(tile: Uint8Array, n: number, k: number): { codes: Uint8Array; scaleMin: Uint16Array } {
  let out = q4Tensors.get(n * k);
  if (!out) {
    const codes = new Uint8Array(n * k / 2);
    for (let at = 0; at < codes.length; at += tile.length) codes.set(tile.subarray(0, Math.min(tile.length, codes.length - at)), at);
    const scale = 0.02 * 1.7 / 7;
    const scaleMin = new Uint16Array(n * k / 16);
    for (let b = 0; b < scaleMin.length; b += 2) scaleMin[b] = floatToHalfBits(scale), scaleMin[b + 1] = floatToHalfBits(8 * scale);
    out = { codes, scaleMin };
    q4Tensors.set(n * k, out);
  }
  return out;
}

function spec(cache: Cache, capacityTokens: number, weights: CudaWeightFormat, decodeAttention: AttentionPath, prefillAttention: AttentionPath): NativeModelSpec {
  const invFreq = Float64Array.from({ length: SHAPE.headDim / 2 }, (_, i) => 1 / 1e6 ** ((2 * i) / SHAPE.headDim));
  const ranks = cache === 'full' ? undefined : Array<number>(SHAPE.layers).fill(DENSITY_RANK);
  return {
    ...SHAPE, rmsNormEps: 1e-6, qkvBias: true, outputBias: false, mlpBias: false, tiedEmbeddings: false, weights, decodeAttention, prefillAttention, slidingWindow: 0, invFreq,
    attentionFactor: 1, device: 0,
    cache: { layers: SHAPE.layers, kvDim: SHAPE.kvHeads * SHAPE.headDim, window: 32, bits: cache === 'cskv-4' ? 4 : 16, kRanks: ranks, vRanks: ranks,
      capacityTokens, chunkTokens: 512 },
  };
}

interface Setup { cache: Cache; weights: CudaWeightFormat; attention: AttentionPath; prefill: AttentionPath }
const describe = (x: Setup): string => `${x.cache} ${x.weights}${x.attention === 'fused' ? ' fused' : ''}${x.prefill === 'fused' ? ' fused-prefill' : ''}`;

function load(addon: NativeAddon, setup: Setup, capacity: number, tile: Uint8Array): NativeCudaEngine {
  const { cache, weights } = setup;
  const s = spec(cache, capacity, weights, setup.attention, setup.prefill);
  const engine = new addon.CudaEngine(s);
  const H = s.hidden, Q = s.heads * s.headDim, D = s.kvHeads * s.headDim, I = s.intermediate;
  const ones = (n: number): Uint8Array => new Uint8Array(new Uint16Array(n).fill(0x3f80).buffer); // bf16 1.0: norms
  const linear = (role: string, layer: number, n: number, k: number): void => {
    if (weights === 'bf16') engine.loadTensor(role, layer, 'BF16', bf16Tensor(tile, n * k));
    else if (weights === 'q8') engine.loadTensorQ8(role, layer, q8Tensor(tile, n, k).codes, q8Tensor(tile, n, k).scales);
    else engine.loadTensorQ4(role, layer, q4Tensor(tile, n, k).codes, q4Tensor(tile, n, k).scaleMin);
  };
  // q8 holds the embedding table in blocks too; q4 keeps it bf16.
  if (weights === 'q8') linear('embedding', -1, s.vocab, H);
  else engine.loadTensor('embedding', -1, 'BF16', bf16Tensor(tile, s.vocab * H));
  linear('lmHead', -1, s.vocab, H);
  engine.loadTensor('finalNorm', -1, 'BF16', ones(H));
  for (let i = 0; i < s.layers; i++) {
    for (const [role, n, k] of [['q', Q, H], ['k', D, H], ['v', D, H], ['o', H, Q], ['gate', I, H], ['up', I, H], ['down', H, I]] as const) linear(role, i, n, k);
    for (const [role, n] of [['qBias', Q], ['kBias', D], ['vBias', D]] as const) engine.loadTensor(role, i, 'BF16', bf16Tensor(tile, n));
    engine.loadTensor('inputNorm', i, 'BF16', ones(H));
    engine.loadTensor('postNorm', i, 'BF16', ones(H));
    if (cache !== 'full') {
      // An orthonormal-enough basis for timing: scaled random rows (the math is the same for any basis).
      for (const role of ['kBasis', 'vBasis']) engine.loadTensor(role, i, 'BF16', bf16Tensor(tile, D * DENSITY_RANK));
      for (const role of ['kMean', 'vMean']) engine.loadTensor(role, i, 'BF16', bf16Tensor(tile, D));
    }
  }
  engine.finishLoading();
  return engine;
}

function parameters(): number {
  const { hidden: H, heads, headDim, kvHeads, intermediate: I, vocab: V, layers } = SHAPE;
  const Q = heads * headDim, D = kvHeads * headDim;
  return 2 * V * H + layers * ((Q + 2 * D) * H + H * Q + 3 * I * H);
}

/** Weight bytes of the decode floor (issue 11: all weight bytes): bf16, or with q8/q4 the embedding bf16 and the rest as blocks. */
function weightBytesRead(weights: CudaWeightFormat): number {
  if (weights === 'bf16') return 2 * parameters();
  const { hidden: H, heads, headDim, kvHeads, intermediate: I, vocab: V, layers } = SHAPE;
  const Q = heads * headDim, D = kvHeads * headDim;
  const bytes = weights === 'q8' ? q8Bytes : q4Bytes;
  const embedding = weights === 'q8' ? bytes(V, H) : 2 * V * H;
  return embedding + bytes(V, H) + layers * (bytes(Q + 2 * D, H) + bytes(H, Q) + bytes(2 * I, H) + bytes(H, I));
}

async function measure(engine: NativeCudaEngine, setup: Setup, context: number, decodeSteps: number, ceilings: Ceilings | undefined): Promise<Run> {
  const { cache, weights } = setup;
  engine.truncate(0);
  const next = mulberry32(context);
  const ids = Int32Array.from({ length: context }, () => Math.floor(next() * SHAPE.vocab));
  const started = performance.now();
  for (let at = 0; at < context; at += 512) {
    const chunk = ids.subarray(at, Math.min(context, at + 512));
    await engine.forward(chunk, at + 512 >= context ? 1 : 0, false, null);
  }
  const prefillS = (performance.now() - started) / 1000;
  const times: number[] = [];
  let token = engine.sample({ greedy: true, temperature: 1, topK: 0, topP: 1, u: 0 });
  for (let i = 0; i <= decodeSteps; i++) {
    const t0 = performance.now();
    await engine.forward(Int32Array.of(token), 1, false, null);
    token = engine.sample({ greedy: true, temperature: 1, topK: 0, topP: 1, u: 0 });
    if (i > 0) times.push(performance.now() - t0); // the first step warms the decode shapes
  }
  times.sort((a, b) => a - b);
  const memory = engine.memory();
  const held = memory.perLayer.reduce((s, l) => s + l.fullBytes + l.compressedBytes, 0);
  const run: Run = {
    engine: 'cskv-code', cache, weights, decode_attention: setup.attention, prefill_attention: setup.prefill, context, prefill_tok_s: context / prefillS, decode_ms: times[Math.floor(times.length / 2)]!,
    kv_bytes_per_token: held / memory.tokens, peak_gpu_bytes: memory.deviceTotalBytes - memory.deviceFreeBytes,
  };
  if (ceilings) {
    const weightBytes = weightBytesRead(weights);
    run.decode_floor_ms = ((weightBytes + held) / ceilings.copy_bytes_per_s) * 1000;
    // Dense GEMMs plus causal attention (QK^T and PV: 2 * 2 * heads * headDim * context^2 / 2 per layer).
    const flops = 2 * parameters() * context + 2 * SHAPE.layers * SHAPE.heads * SHAPE.headDim * context * context;
    run.prefill_floor_tok_s = context / (flops / ceilings.bf16_gemm_flop_per_s);
  }
  return run;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    out: { type: 'string', default: 'bench/results' }, contexts: { type: 'string', default: '4096,32768' }, decode: { type: 'string', default: '16' },
    peer: { type: 'string' }, caches: { type: 'string', default: 'full,cskv-16,cskv-4' }, q8: { type: 'string', default: 'full' },
    fused: { type: 'string', default: 'cskv-4' }, q4: { type: 'string', default: 'full' }, 'fused-prefill': { type: 'string', default: 'cskv-4' },
  } });
  const contexts = values.contexts!.split(',').map(Number);
  const list = (value: string | undefined): Cache[] => (value ?? '').split(',').filter(Boolean) as Cache[];
  const runs: Setup[] = [
    ...list(values.caches).map((cache): Setup => ({ cache, weights: 'bf16', attention: 'rebuild', prefill: 'rebuild' })),
    ...list(values.q8).map((cache): Setup => ({ cache, weights: 'q8', attention: 'rebuild', prefill: 'rebuild' })),
    ...list(values.fused).map((cache): Setup => ({ cache, weights: 'bf16', attention: 'fused', prefill: 'rebuild' })),
    ...list(values.q4).map((cache): Setup => ({ cache, weights: 'q4', attention: 'rebuild', prefill: 'rebuild' })),
    ...list(values['fused-prefill']).map((cache): Setup => ({ cache, weights: 'bf16', attention: 'rebuild', prefill: 'fused' })),
  ];
  const decodeSteps = Number(values.decode);
  fs.mkdirSync(values.out!, { recursive: true });
  const file = path.join(values.out!, 'cuda-7b.json');
  const loaded = loadNativeAddon();
  if (!loaded.loaded) throw new Error(loaded.reason);
  const addon = loaded.addon;
  const probe = await addon.probe();
  if (!probe.available) {
    console.error(`cuda bench: CUDA unavailable: ${probe.reason}`);
    fs.writeFileSync(file, JSON.stringify({ device: null, error: `CUDA unavailable: ${probe.reason}`, runs: [] }, null, 2));
    process.exitCode = 3; // test/gpu/stage.sh: 3 = the GPU this needs is not on this machine
    return;
  }
  const peer = values.peer && fs.existsSync(values.peer) ? JSON.parse(fs.readFileSync(values.peer, 'utf8')) as { ceilings?: Ceilings; runs?: Run[] } : {};
  const result = { device: probe.devices[0]?.name, ceilings: peer.ceilings ?? null, runs: [...(peer.runs ?? [])] as Run[] };
  const save = (): void => fs.writeFileSync(file, JSON.stringify(result, null, 2));
  const tile = randomTile(64 << 20);
  // One load per cache and weight format (15 GB of weights in bf16, ~8.6 GB in q8), every context on it in turn.
  const capacity = Math.max(...contexts) + decodeSteps + 64;
  for (const setup of runs) {
    let engine: NativeCudaEngine | undefined;
    try {
      const t0 = performance.now();
      engine = load(addon, setup, capacity, tile);
      console.error(`cuda bench: ${describe(setup)} loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      for (const context of contexts) result.runs.push(failed(setup, context, err));
      console.error(`cuda bench ${describe(setup)}: ${(err as Error).message}`);
      save();
      continue;
    }
    for (const context of contexts) {
      try {
        const run = await measure(engine, setup, context, decodeSteps, peer.ceilings);
        result.runs.push(run);
        console.error(JSON.stringify(run));
      } catch (err) {
        result.runs.push(failed(setup, context, err));
        console.error(`cuda bench ${describe(setup)} @ ${context}: ${(err as Error).message}`);
      }
      save();
    }
    engine.dispose();
  }
  printTable(result.runs);
}

function failed(setup: Setup, context: number, err: unknown): Run {
  return { engine: 'cskv-code', cache: setup.cache, weights: setup.weights, decode_attention: setup.attention, prefill_attention: setup.prefill, context, prefill_tok_s: 0, decode_ms: 0, kv_bytes_per_token: 0, peak_gpu_bytes: 0, error: String((err as Error).message) };
}

function printTable(runs: Run[]): void {
  const rows = [['engine', 'cache', 'weights', 'attention', 'prefill', 'context', 'prefill tok/s', 'floor tok/s', 'decode ms', 'floor ms', 'KV B/token', 'peak GiB', 'error']];
  for (const r of runs) {
    rows.push([r.engine, r.cache, r.weights ?? '', r.decode_attention ?? '', r.prefill_attention ?? '', String(r.context), r.prefill_tok_s.toFixed(0), r.prefill_floor_tok_s?.toFixed(0) ?? '', r.decode_ms.toFixed(2),
      r.decode_floor_ms?.toFixed(2) ?? '', r.kv_bytes_per_token.toFixed(0), (r.peak_gpu_bytes / 1024 ** 3).toFixed(1), (r.error ?? '').slice(0, 60)]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((v, c) => v.padStart(widths[c]!)).join('  '));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
