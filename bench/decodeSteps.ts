// Where a CPU decode step's time goes besides the weights: onnxruntime session runs per step, graph nodes executed
// per step (after onnxruntime's own fusions), the kernels' summed time and the step's wall time, with the op types
// that run most. Qwen2.5-0.5B shape with random weights (or --shape tiny to check the script), q8 weights, full
// cache and CSKV 16-bit; onnxruntime's profiler on every session of the engine. Prints a table and writes JSON.
// Profiling adds its own cost per node: decode ms/token is measured without it, in bench/cpu.ts.
//   node out/bench/decodeSteps.js [--context 512] [--decode 8] [--threads N] [--shape 0.5b|tiny] [--out FILE]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ort } from '../src/runtime/onnx/ort';
import { OnnxEngine } from '../src/runtime/backends/onnxEngine';
import { type ModelShape, QWEN25_05B, writeRandomCskv, writeRandomModel } from '../test/support/randomModel';

const SHAPES: Record<string, ModelShape> = {
  '0.5b': QWEN25_05B,
  tiny: { hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 1024 },
};

interface ProfileEvent { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } }

interface StepProfile {
  cache: 'full' | 'cskv-16';
  context: number;
  session_runs_per_step: number;
  nodes_per_step: number;
  /** Kernel time summed over the step's nodes, and the runs' own time (kernels plus onnxruntime's work around them). */
  kernel_ms_per_step: number;
  run_ms_per_step: number;
  wall_ms_per_step: number;
  /** Nodes a step runs in the decoder layers' sessions, per layer (the output head's left out). */
  nodes_per_layer: number;
  op_types: { op: string; count: number; ms: number }[];
}

/** Every session the engine creates, profiled into `dir`. */
function profileSessions(dir: string): { sessions: ort.InferenceSession[]; restore: () => void } {
  const sessions: ort.InferenceSession[] = [];
  const create = ort.InferenceSession.create.bind(ort.InferenceSession);
  let n = 0;
  (ort.InferenceSession as unknown as { create: unknown }).create = async (model: Uint8Array, options: ort.InferenceSession.SessionOptions) => {
    const session = await create(model, { ...options, enableProfiling: true, profileFilePrefix: path.join(dir, `session-${n++}`) });
    sessions.push(session);
    return session;
  };
  return { sessions, restore: () => { (ort.InferenceSession as unknown as { create: unknown }).create = create; } };
}

async function measure(dir: string, cache: StepProfile['cache'], context: number, decode: number, threads: number): Promise<StepProfile> {
  const profiles = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-profile-'));
  const { sessions, restore } = profileSessions(profiles);
  const engine = await OnnxEngine.load(dir, { weights: 'q8', threads, cskv: cache === 'full' ? undefined : path.join(dir, 'cskv-16.safetensors') });
  restore();
  const vocab = engine.info.config.vocabSize;
  let wallMs = 0;
  const layers = engine.info.config.layers;
  try {
    await engine.prefill(Array.from({ length: context }, (_, i) => (i * 7919 + 13) % vocab), { logits: 1 });
    const t0 = performance.now();
    for (let i = 0; i < decode; i++) await engine.prefill([(i * 31 + 5) % vocab]);
    wallMs = (performance.now() - t0) / decode;
    for (const s of sessions) s.endProfiling();
  } finally {
    await engine.dispose();
  }
  // Each session's last `decode` runs are the decode steps; a node belongs to the run whose span holds it.
  let runs = 0, nodes = 0, kernelUs = 0, runUs = 0, layerNodes = 0;
  const head = fs.readdirSync(profiles).find((f) => f.startsWith('session-0_')); // the engine creates the head first
  const ops = new Map<string, { count: number; us: number }>();
  const files = fs.readdirSync(profiles).sort();
  for (const file of files) {
    const events = JSON.parse(fs.readFileSync(path.join(profiles, file), 'utf8')) as ProfileEvent[];
    const modelRuns = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').slice(-decode);
    const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
    for (const r of modelRuns) {
      runs++;
      runUs += r.dur;
      const inside = kernels.filter((k) => k.ts >= r.ts && k.ts <= r.ts + r.dur);
      nodes += inside.length;
      if (file !== head) layerNodes += inside.length;
      for (const k of inside) {
        kernelUs += k.dur;
        const op = ops.get(k.args?.op_name ?? '?') ?? { count: 0, us: 0 };
        op.count++;
        op.us += k.dur;
        ops.set(k.args?.op_name ?? '?', op);
      }
    }
  }
  fs.rmSync(profiles, { recursive: true, force: true });
  return {
    cache, context,
    session_runs_per_step: runs / decode, nodes_per_step: nodes / decode,
    kernel_ms_per_step: kernelUs / 1000 / decode, run_ms_per_step: runUs / 1000 / decode, wall_ms_per_step: wallMs,
    nodes_per_layer: layerNodes / decode / layers,
    op_types: [...ops].map(([op, v]) => ({ op, count: v.count / decode, ms: v.us / 1000 / decode })).sort((a, b) => b.ms - a.ms),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      context: { type: 'string', default: '512' }, decode: { type: 'string', default: '8' },
      threads: { type: 'string', default: String(os.cpus().length) }, shape: { type: 'string', default: '0.5b' }, out: { type: 'string' },
    },
  });
  const shape = SHAPES[values.shape];
  if (!shape) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-steps-'));
  const results: StepProfile[] = [];
  try {
    process.stderr.write(`writing a random ${values.shape}-shaped Qwen2 model to ${dir} ...\n`);
    writeRandomModel(dir, shape);
    writeRandomCskv(path.join(dir, 'cskv-16.safetensors'), shape, 0.2, 16, 32);
    for (const cache of ['full', 'cskv-16'] as const) {
      results.push(await measure(dir, cache, Number(values.context), Number(values.decode), Number(values.threads)));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log('| cache | context | session runs / step | nodes / step (per layer) | kernels ms | runs ms | wall ms (profiled) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.cache} | ${r.context} | ${r.session_runs_per_step} | ${r.nodes_per_step} (${r.nodes_per_layer.toFixed(1)}) | ${r.kernel_ms_per_step.toFixed(1)} | ${r.run_ms_per_step.toFixed(1)} | ${r.wall_ms_per_step.toFixed(1)} |`);
  }
  for (const r of results) {
    console.log(`\n${r.cache}: op types per step (count, ms): ${r.op_types.slice(0, 14).map((o) => `${o.op} ${o.count} ${o.ms.toFixed(2)}`).join(', ')}`);
  }
  const outFile = values.out ?? path.join(__dirname, '..', '..', 'bench', 'results', `decode-steps-${values.shape}.json`);
  fs.writeFileSync(outFile, `${JSON.stringify({ benchmark: 'decode-steps', shape: values.shape, threads: Number(values.threads), load_average: os.loadavg(), date: new Date().toISOString(), runs: results }, null, 2)}\n`);
}

if (require.main === module) void main();
