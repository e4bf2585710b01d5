// CPU benchmark, Qwen2.5-0.5B shape with random weights: cskv-code's onnx backend (f32, q8 and q4 weights; full
// cache and CSKV 16-bit at density 0.2, and 4-bit with q8 weights) against llama.cpp (node-llama-cpp's prebuilt CPU build; the same model
// written as GGUF F16 and Q8_0) in one run, the engines alternating, each configuration and context in a fresh
// process of the same priority (so its resident memory, after loading and at its peak, is its own and not what an
// earlier context left behind), the same thread count and prompts. Prints a table and writes
// bench/results/cpu-0.5b.json. Figures on a shared 2-core machine vary by 15-25% between runs.
//   node out/bench/cpu.js [--contexts 512,2048,8192] [--decode 16] [--threads N] [--shape 0.5b|tiny] [--out FILE]
//                         [--only engine:weights:cache,...]
// (--shape tiny: a small model that checks the benchmark itself in seconds; its figures mean nothing. --only: the
// configurations named, e.g. cskv-code:q8:full,llama.cpp:q8_0:full, for measuring one change quickly.)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ort } from '../src/runtime/onnx/ort';
import { OnnxEngine } from '../src/runtime/backends/onnxEngine';
import type { WeightFormat } from '../src/runtime/model/weightFormat';
import { byteTokenizerMetadata, convertToGguf } from '../test/support/ggufWriter';
import { type Token, cpuLlama } from '../test/support/llamaCpp';
import { type ModelShape, QWEN25_05B, writeRandomCskv, writeRandomModel } from '../test/support/randomModel';
import { GraphBuilder } from '../src/runtime/onnx/graphBuilder';
import { ranInRuntimeEnv } from './inRuntimeEnv';

type Config =
  | { engine: 'cskv-code'; weights: WeightFormat; cache: 'full' | 'cskv-16' | 'cskv-4' }
  | { engine: 'llama.cpp'; weights: 'f16' | 'q8_0'; cache: 'full' };

interface Measured {
  context: number;
  prefill_tok_s: number;
  decode_ms: number;
  kv_bytes_per_token?: number;
}

interface Run extends Measured {
  engine: Config['engine'];
  weights: Config['weights'];
  cache: Config['cache'];
  decode_floor_ms: number;
  /** Peak resident memory of the process that measured this context: loading, the prefill and the decode steps. */
  peak_rss_bytes: number;
  /** Resident memory once the engine is loaded, before any prompt. */
  rss_after_load_bytes: number;
  /** Resident memory right after the prompt's prefill. */
  rss_after_prefill_bytes: number;
}

/** What a child process reports: its one context's figures and its resident memory. */
interface ChildResult {
  measured: Measured;
  rssAfterLoadBytes: number;
  rssAfterPrefillBytes: number;
  peakRssBytes: number;
}

interface ChildJob {
  config: Config;
  dir: string;
  context: number;
  decode: number;
  threads: number;
  shape: ModelShape;
}

// The engines alternate so that a change in the machine's load falls on both.
const CONFIGS: Config[] = [
  { engine: 'cskv-code', weights: 'q8', cache: 'full' },
  { engine: 'llama.cpp', weights: 'q8_0', cache: 'full' },
  { engine: 'cskv-code', weights: 'f32', cache: 'full' },
  { engine: 'llama.cpp', weights: 'f16', cache: 'full' },
  { engine: 'cskv-code', weights: 'q4', cache: 'full' },
  { engine: 'cskv-code', weights: 'q8', cache: 'cskv-16' },
  { engine: 'cskv-code', weights: 'f32', cache: 'cskv-16' },
  { engine: 'cskv-code', weights: 'q4', cache: 'cskv-16' },
  { engine: 'cskv-code', weights: 'q8', cache: 'cskv-4' },
];

const SHAPES: Record<string, ModelShape> = {
  '0.5b': QWEN25_05B,
  tiny: { hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 1024 },
};

const prompt = (n: number, vocab: number): number[] => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);
const nextToken = (i: number, vocab: number): number => (i * 31 + 5) % vocab;

/** Bytes of weights a decode step reads: every linear layer and the (tied) output head; one embedding row is noise. */
function weightBytesPerToken(s: ModelShape, weights: Config['weights']): number {
  const Q = s.heads * s.headDim, D = s.kvHeads * s.headDim;
  const params = s.layers * (2 * s.hidden * Q + 2 * s.hidden * D + 3 * s.hidden * s.intermediate) + s.vocab * s.hidden;
  const perParam = { f32: 4, f16: 2, q8: 1 + 4 / 32, q4: 0.5 + 4 / 32, q8_0: 34 / 32 }[weights];
  return params * perParam;
}

/** Read bandwidth with `threads` threads: onnxruntime summing 1 GiB of floats, best of five. */
async function readBandwidth(threads: number): Promise<number> {
  const g = new GraphBuilder('read');
  const x = g.input('x', ['N']);
  g.output(g.op('ReduceSum', [x, g.ints([0])], { keepdims: 0 }), 'sum', []);
  const graph = g.finish();
  const session = await ort.InferenceSession.create(graph.model, { intraOpNumThreads: threads, externalData: graph.externalData });
  const data = new Float32Array(2 ** 28).fill(1.5);
  for (let i = 0; i < data.length; i += 4099) data[i] = i % 7;
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await session.run({ x: new ort.Tensor('float32', data, [data.length]) });
    best = Math.min(best, performance.now() - t0);
  }
  await session.release();
  return data.byteLength / (best / 1000);
}

async function measureOurs(job: ChildJob & { config: Extract<Config, { engine: 'cskv-code' }> }): Promise<ChildResult> {
  const cskv = job.config.cache === 'full' ? undefined : path.join(job.dir, `${job.config.cache}.safetensors`);
  const engine = await OnnxEngine.load(job.dir, { cskv, weights: job.config.weights, threads: job.threads });
  const rssAfterLoadBytes = residentBytes('VmRSS');
  const vocab = engine.info.config.vocabSize;
  const { context } = job;
  try {
    const t0 = performance.now();
    await engine.prefill(prompt(context, vocab), { logits: 1 });
    const prefillS = (performance.now() - t0) / 1000;
    const rssAfterPrefillBytes = residentBytes('VmRSS');
    const t1 = performance.now();
    for (let i = 0; i < job.decode; i++) await engine.prefill([nextToken(i, vocab)]);
    const decodeMs = (performance.now() - t1) / job.decode;
    const m = engine.memory();
    const measured = { context, prefill_tok_s: context / prefillS, decode_ms: decodeMs, kv_bytes_per_token: m.totalBytes / m.tokens };
    return { measured, rssAfterLoadBytes, rssAfterPrefillBytes, peakRssBytes: residentBytes('VmHWM') };
  } finally {
    await engine.dispose();
  }
}

async function measureLlamaCpp(job: ChildJob): Promise<ChildResult> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath: path.join(job.dir, `model-${job.config.weights}.gguf`) });
  const n = job.context;
  const context = await model.createContext({ contextSize: n + job.decode + 64, threads: job.threads, batchSize: 512 });
  const rssAfterLoadBytes = residentBytes('VmRSS');
  const sequence = context.getSequence();
  const vocab = job.shape.vocab;
  // Both engines compute the last position's logits, for the prompt and for every decoded token.
  const withLogits = (t: number): [Token, { generateNext: { token: true } }] => [t as Token, { generateNext: { token: true } }];
  try {
    const ids = prompt(n, vocab);
    const t0 = performance.now();
    await sequence.controlledEvaluate([...ids.slice(0, -1).map((t) => t as Token), withLogits(ids[n - 1]!)]);
    const prefillS = (performance.now() - t0) / 1000;
    const rssAfterPrefillBytes = residentBytes('VmRSS');
    const t1 = performance.now();
    for (let i = 0; i < job.decode; i++) await sequence.controlledEvaluate([withLogits(nextToken(i, vocab))]);
    const measured = { context: n, prefill_tok_s: n / prefillS, decode_ms: (performance.now() - t1) / job.decode };
    return { measured, rssAfterLoadBytes, rssAfterPrefillBytes, peakRssBytes: residentBytes('VmHWM') };
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

async function child(job: ChildJob): Promise<void> {
  const result = job.config.engine === 'cskv-code' ? await measureOurs(job as never) : await measureLlamaCpp(job);
  process.stdout.write(JSON.stringify(result));
}

/**
 * This process's resident memory now (VmRSS) or at its peak (VmHWM). VmHWM, unlike getrusage's maxrss, which a child
 * inherits from its parent across fork and exec, starts afresh in each process.
 */
function residentBytes(field: 'VmRSS' | 'VmHWM'): number {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  if (!line) throw new Error(`/proc/self/status has no ${field}`);
  return Number(line.split(/\s+/)[1]) * 1024;
}

async function main(): Promise<void> {
  if (ranInRuntimeEnv()) return;
  const { values } = parseArgs({
    options: {
      contexts: { type: 'string', default: '512,2048,8192' }, decode: { type: 'string', default: '16' },
      threads: { type: 'string', default: String(os.cpus().length) }, out: { type: 'string' }, child: { type: 'string' },
      shape: { type: 'string', default: '0.5b' }, only: { type: 'string' },
    },
  });
  if (values.child) return child(JSON.parse(values.child) as ChildJob);
  const contexts = values.contexts.split(',').map(Number);
  const decode = Number(values.decode);
  const threads = Number(values.threads);
  const shape = SHAPES[values.shape];
  if (!shape) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
  const configs = values.only === undefined ? CONFIGS : selected(CONFIGS, values.only);
  const root = path.resolve(__dirname, '..', '..');
  const outFile = values.out ?? path.join(root, 'bench', 'results', 'cpu-0.5b.json');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-bench-'));
  try {
    process.stderr.write(`writing a random ${values.shape}-shaped Qwen2 model (bf16 safetensors, GGUF F16 and Q8_0) to ${dir} ...\n`);
    writeRandomModel(dir, shape);
    // Only the files the configurations measured read.
    const caches = new Set(configs.map((c) => c.cache));
    const ggufs = new Set(configs.filter((c) => c.engine === 'llama.cpp').map((c) => c.weights));
    for (const bits of [16, 4] as const) if (caches.has(`cskv-${bits}`)) writeRandomCskv(path.join(dir, `cskv-${bits}.safetensors`), shape, 0.2, bits, 32);
    for (const [name, type] of [['f16', 'F16'], ['q8_0', 'Q8_0']] as const) {
      if (ggufs.has(name)) convertToGguf(dir, path.join(dir, `model-${name}.gguf`), type, { metadata: byteTokenizerMetadata(shape.vocab), values: false });
    }
    const bandwidth = await readBandwidth(threads);
    process.stderr.write(`read bandwidth with ${threads} threads: ${(bandwidth / 1e9).toFixed(1)} GB/s\n`);
    const runs: Run[] = [];
    for (const config of configs) {
      for (const context of contexts) {
        const job: ChildJob = { config, dir, context, decode, threads, shape };
        let result: ChildResult;
        try {
          result = JSON.parse(execFileSync(process.execPath, [__filename, '--child', JSON.stringify(job)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 }));
        } catch (err) {
          process.stderr.write(`${configName(config)} at ${context} failed: ${(err as Error).message}\n`);
          continue;
        }
        const run: Run = { engine: config.engine, weights: config.weights, cache: config.cache, ...result.measured,
          decode_floor_ms: (weightBytesPerToken(shape, config.weights) / bandwidth) * 1000, peak_rss_bytes: result.peakRssBytes,
          rss_after_load_bytes: result.rssAfterLoadBytes, rss_after_prefill_bytes: result.rssAfterPrefillBytes };
        process.stderr.write(`${JSON.stringify(run)}\n`);
        runs.push(run);
      }
    }
    const result = {
      benchmark: 'cpu',
      model: values.shape === '0.5b' ? 'Qwen2.5-0.5B shape, random bf16 weights' : `${values.shape} shape (a check of the benchmark, not a measurement)`,
      device: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`,
      threads,
      read_bandwidth_bytes_s: bandwidth,
      load_average: os.loadavg(),
      date: new Date().toISOString(),
      decode_steps: decode,
      runs,
    };
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
    console.log(table(runs, contexts));
    console.log(`\nread bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s (${threads} threads); load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`written to ${path.relative(process.cwd(), outFile)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const configName = (c: Config): string => `${c.engine}:${c.weights}:${c.cache}`;

/** The configurations `--only` names (engine:weights:cache, comma-separated), in the benchmark's own order. */
function selected(configs: Config[], only: string): Config[] {
  const names = only.split(',').map((n) => n.trim()).filter((n) => n !== '');
  const unknown = names.filter((n) => !configs.some((c) => configName(c) === n));
  if (unknown.length > 0 || names.length === 0) throw new Error(`--only names none of, or other than, these configurations: ${configs.map(configName).join(', ')}`);
  return configs.filter((c) => names.includes(configName(c)));
}

export function table(runs: Run[], contexts: number[]): string {
  const at = (rows: Run[], f: (r: Run) => string): string => contexts.map((c) => { const r = rows.find((x) => x.context === c); return r ? f(r) : '-'; }).join(' / ');
  const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(2);
  const lines = [
    `| engine | weights | cache | prefill ${contexts.join(' / ')} (tok/s) | decode after ${contexts.join(' / ')} (ms/token) | decode floor (ms) | RSS after load ${contexts.join(' / ')} (GiB) | peak RSS ${contexts.join(' / ')} (GiB) |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  const keys = [...new Set(runs.map((r) => `${r.engine}|${r.weights}|${r.cache}`))];
  for (const key of keys) {
    const rows = runs.filter((r) => `${r.engine}|${r.weights}|${r.cache}` === key);
    const first = rows[0]!;
    lines.push(`| ${first.engine} | ${first.weights} | ${first.cache} | ${at(rows, (r) => r.prefill_tok_s.toFixed(0))} | ${at(rows, (r) => r.decode_ms.toFixed(1))} | ${first.decode_floor_ms.toFixed(1)} | ${at(rows, (r) => gib(r.rss_after_load_bytes))} | ${at(rows, (r) => gib(r.peak_rss_bytes))} |`);
  }
  return lines.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
