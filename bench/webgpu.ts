// WebGPU backend against the onnx CPU backend, in the same run on the same random model: prefill tokens/s and
// decode ms/token at each context, interleaved (CPU, then WebGPU with the cache uploaded every step, then WebGPU
// keeping activations and the cache on the device; --repeats rounds, the best of each kept), plus how far
// the WebGPU logits are from the CPU's, and what crosses between host and GPU (bytes, counted on every session
// run: test/support/deviceTransfers.ts) per decode step and per edit (the cache cut EDIT_BACK tokens back and as
// many new tokens prefilled). Prints a table and writes bench/results/webgpu.json.
//   node out/bench/webgpu.js [--shape tiny|0.5b] [--contexts 64,256] [--decode 8] [--repeats 2] [--cskv off|16|8|4|2]
//                            [--weights f32|q8|q4] [--out FILE]
// Both backends hold the weights in the same format (default: the engine's, q8; with --weights f16 the CPU holds f32). The CPU's MatMulNBits quantises
// activations to int8 and WebGPU's computes in f32, so their logits are further apart at q8/q4 than at f32.
// On a machine without a GPU the WebGPU adapter is Mesa's software Vulkan driver (lavapipe), which computes on the
// CPU through a shader emulator: a correctness path, expected to be much slower than the CPU backend. Its numbers
// say nothing about GPUs; run this on a GPU machine (NVIDIA's Vulkan driver, AMD, Intel, Apple) for those.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { OnnxEngine } from '../src/runtime/backends/onnxEngine';
import { checkWebGpu } from '../src/runtime/backends/webgpuAvailability';
import { loadWebGpuEngine } from '../src/runtime/backends/webgpuEngine';
import type { Engine } from '../src/runtime/engine';
import type { WebGpuMemory } from '../src/protocol';
import { DEFAULT_WEIGHT_FORMAT, WEIGHT_FORMATS, isWeightFormat } from '../src/runtime/model/weightFormat';
import { type ModelShape, QWEN25_05B, writeRandomCskv, writeRandomModel } from '../test/support/randomModel';
import { countTransfers, totalDown } from '../test/support/deviceTransfers';

/** A small Qwen2-like shape: big enough for real GEMMs, small enough for the software driver. */
const TINY: ModelShape = { hidden: 256, layers: 4, heads: 4, kvHeads: 2, headDim: 64, intermediate: 1024, vocab: 4096 };
const SHAPES: Record<string, ModelShape> = { tiny: TINY, '0.5b': QWEN25_05B };

type Variant = 'onnx' | 'webgpu-upload' | 'webgpu';

/** An edit: the cache cut this many tokens back, and as many other tokens prefilled in their place. */
const EDIT_BACK = 8;
/** Edits counted per context. */
const EDITS = 8;

/** Bytes sent up and read back, each the mean per decode step or per edit. */
interface Crossed {
  up: number;
  down: number;
}

interface Run {
  /** webgpu-upload: the cache and activations cross to the GPU every step; webgpu: they stay there (the default). */
  backend: Variant;
  context: number;
  prefill_tok_s: number;
  decode_ms: number;
  /** max |logits - CPU logits| / max |CPU logits| over the prompt's last position and every decode step. */
  logits_rel_diff_vs_cpu: number;
  /** What the engine holds on the GPU after the last run, by its own count (WebGPU variants). */
  gpu_memory?: WebGpuMemory | undefined;
  /** Host <-> GPU bytes per decode step and per edit (WebGPU variants). */
  decode_bytes?: Crossed | undefined;
  edit_bytes?: Crossed | undefined;
}

/** Bytes crossing per decode step and per edit, after a prefill of the prompt (not counted). */
async function transfers(engine: Engine, prompt: number[], steps: number[], vocab: number): Promise<{ decode: Crossed; edit: Crossed }> {
  await engine.truncate(0);
  await engine.prefill(prompt);
  const decode = await countTransfers(async () => {
    for (const t of steps) await engine.prefill([t]);
  });
  const edit = await countTransfers(async () => {
    for (let e = 0; e < EDITS; e++) {
      await engine.truncate(engine.length - EDIT_BACK);
      await engine.prefill(Array.from({ length: EDIT_BACK }, (_, i) => (e * 131 + i * 17 + 3) % vocab));
    }
  });
  const mean = (t: Awaited<ReturnType<typeof countTransfers>>, n: number): Crossed => ({ up: t.up / n, down: totalDown(t) / n });
  return { decode: mean(decode, steps.length), edit: mean(edit, EDITS) };
}

async function measure(engine: Engine, prompt: number[], steps: number[]): Promise<{ prefillS: number; decodeMs: number; rows: Float32Array[] }> {
  await engine.truncate(0);
  const t0 = performance.now();
  const rows = [await engine.prefill(prompt)];
  const prefillS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  for (const t of steps) rows.push(await engine.prefill([t]));
  return { prefillS, decodeMs: (performance.now() - t1) / steps.length, rows };
}

function relativeDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((row, i) => {
    let diff = 0, scale = 0;
    row.forEach((x, j) => {
      diff = Math.max(diff, Math.abs(x - b[i]![j]!));
      scale = Math.max(scale, Math.abs(b[i]![j]!));
    });
    worst = Math.max(worst, diff / scale);
  });
  return worst;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    shape: { type: 'string', default: 'tiny' }, contexts: { type: 'string', default: '64,256' }, decode: { type: 'string', default: '8' },
    repeats: { type: 'string', default: '2' },
    cskv: { type: 'string', default: 'off' }, weights: { type: 'string', default: DEFAULT_WEIGHT_FORMAT }, out: { type: 'string' },
  } });
  const shape = SHAPES[values.shape];
  if (!shape) throw new Error(`--shape must be ${Object.keys(SHAPES).join(' or ')}, got "${values.shape}"`);
  if (!['off', '16', '8', '4', '2'].includes(values.cskv)) throw new Error(`--cskv must be off, 16, 8, 4 or 2, got "${values.cskv}"`);
  const weights = values.weights;
  if (!isWeightFormat(weights)) throw new Error(`--weights must be ${WEIGHT_FORMATS.join(', ')}, got "${weights}"`);
  const contexts = values.contexts.split(',').map(Number);
  const decodeSteps = Number(values.decode);
  const repeats = Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got "${values.repeats}"`);
  const root = path.resolve(__dirname, '..', '..');
  const outFile = values.out ?? path.join(root, 'bench', 'results', 'webgpu.json');

  const webgpu = await checkWebGpu();
  if (!webgpu.available) throw new Error(`WebGPU cannot run here: ${webgpu.reason}`);
  process.stderr.write(`WebGPU adapter: ${webgpu.summary}\n`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-bench-webgpu-'));
  try {
    writeRandomModel(dir, shape);
    let cskv: string | undefined;
    if (values.cskv !== 'off') {
      cskv = path.join(dir, 'cskv.safetensors');
      writeRandomCskv(cskv, shape, 0.2, Number(values.cskv), 32);
    }
    const engines: Record<Variant, Engine> = {
      // f16 is WebGPU's only: the CPU row is the f32 model it halves.
      onnx: await OnnxEngine.load(dir, { cskv, weights: weights === 'f16' ? 'f32' : weights }),
      'webgpu-upload': await loadWebGpuEngine(dir, { cskv, weights }, false),
      webgpu: await loadWebGpuEngine(dir, { cskv, weights }, true),
    };
    const variants = Object.keys(engines) as Variant[];
    const runs: Run[] = [];
    try {
      for (const context of contexts) {
        const prompt = Array.from({ length: context }, (_, i) => (i * 7919 + 13) % shape.vocab);
        const steps = Array.from({ length: decodeSteps }, (_, i) => (i * 31 + 5) % shape.vocab);
        // Shader compilation and buffer pools: not the steady state.
        for (const v of variants) if (v !== 'onnx') await measure(engines[v], prompt.slice(0, 8), steps.slice(0, 1));
        const best = new Map<Variant, Awaited<ReturnType<typeof measure>>>();
        for (let r = 0; r < repeats; r++) {
          for (const v of variants) {
            const m = await measure(engines[v], prompt, steps);
            const prev = best.get(v);
            best.set(v, prev ? { ...m, prefillS: Math.min(prev.prefillS, m.prefillS), decodeMs: Math.min(prev.decodeMs, m.decodeMs) } : m);
          }
        }
        const cpuRows = best.get('onnx')!.rows;
        for (const backend of variants) {
          const m = best.get(backend)!;
          const gpu_memory = engines[backend].webgpuMemory?.();
          const crossed = backend === 'onnx' ? undefined : await transfers(engines[backend], prompt, steps, shape.vocab);
          const run: Run = {
            backend, context, prefill_tok_s: context / m.prefillS, decode_ms: m.decodeMs, logits_rel_diff_vs_cpu: backend === 'onnx' ? 0 : relativeDiff(m.rows, cpuRows),
            gpu_memory, decode_bytes: crossed?.decode, edit_bytes: crossed?.edit,
          };
          process.stderr.write(`${JSON.stringify(run)}\n`);
          runs.push(run);
        }
      }
    } finally {
      await Promise.all(variants.map((v) => engines[v].dispose()));
    }
    const result = {
      benchmark: 'webgpu-vs-cpu',
      model: `${values.shape} shape (${JSON.stringify(shape)}), random bf16 weights, ${weights} in onnxruntime on both backends`,
      cache: values.cskv === 'off' ? 'full' : `cskv-${values.cskv}, density 0.2, window 32`,
      adapter: webgpu.summary,
      software_adapter: webgpu.adapter.software,
      note: webgpu.adapter.software
        ? 'software Vulkan (Mesa lavapipe): a correctness path, not a speed one; its timings say nothing about GPUs'
        : 'hardware adapter',
      cpu: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`,
      date: new Date().toISOString(),
      decode_steps: decodeSteps,
      edit: `${EDITS} edits: the cache cut ${EDIT_BACK} tokens back, ${EDIT_BACK} other tokens prefilled (bytes are the mean per edit)`,
      repeats,
      runs,
    };
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`adapter: ${webgpu.summary}${webgpu.adapter.software ? ' (a correctness path, not a speed one)' : ''}\n`);
    console.log(table(runs));
    console.log(`\nwritten to ${path.relative(process.cwd(), outFile)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function table(runs: Run[]): string {
  const lines = [
    '| backend | context | prefill tok/s | decode ms/token | logits vs CPU (rel.) | up / down per decode step (KB) | up / down per edit (KB) |',
    '|---|---|---|---|---|---|---|',
  ];
  const kb = (c: Crossed | undefined): string => (c ? `${(c.up / 1000).toFixed(1)} / ${(c.down / 1000).toFixed(1)}` : '—');
  for (const r of runs) {
    lines.push(`| ${r.backend} | ${r.context} | ${r.prefill_tok_s.toFixed(1)} | ${r.decode_ms.toFixed(1)} | ${r.backend === 'onnx' ? '—' : r.logits_rel_diff_vs_cpu.toExponential(1)} | ${kb(r.decode_bytes)} | ${kb(r.edit_bytes)} |`);
  }
  return lines.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
