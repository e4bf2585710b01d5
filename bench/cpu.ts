// CPU (onnx backend) benchmark on a Qwen2.5-0.5B-shaped model with random weights: prefill tokens/s, decode
// ms/token and KV bytes per token with CSKV off (the baseline), at density 0.2 with 16 bits and with 4 bits,
// side by side in one run. Prints a table and writes bench/results/cpu-0.5b.json.
//   node out/bench/cpu.js [--contexts 512,2048] [--decode 16] [--out FILE]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { OnnxEngine } from '../src/runtime/backends/onnxEngine';
import { QWEN25_05B, writeRandomCskv, writeRandomModel } from '../test/support/randomModel';

interface Run {
  cache: 'full' | 'cskv-16' | 'cskv-4';
  context: number;
  prefill_tok_s: number;
  decode_ms: number;
  kv_bytes_per_token: number;
  kv_savings_vs_fp16: number;
}

/** Loads the model in a fresh process and reports its peak resident memory, so nothing else counts in it. */
function loadPeakRss(dir: string): number {
  const out = execFileSync(process.execPath, [__filename, '--measure-load', dir], { encoding: 'utf8' });
  return Number(JSON.parse(out).maxRssBytes);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { contexts: { type: 'string', default: '512,2048' }, decode: { type: 'string', default: '16' }, out: { type: 'string' }, 'measure-load': { type: 'string' } } });
  if (values['measure-load']) {
    const engine = await OnnxEngine.load(values['measure-load']);
    await engine.dispose();
    console.log(JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
    return;
  }
  const contexts = values.contexts.split(',').map(Number);
  const decodeSteps = Number(values.decode);
  const root = path.resolve(__dirname, '..', '..');
  const outFile = values.out ?? path.join(root, 'bench', 'results', 'cpu-0.5b.json');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-bench-'));
  try {
    process.stderr.write(`writing a random Qwen2.5-0.5B-shaped model to ${dir} ...\n`);
    writeRandomModel(dir, QWEN25_05B);
    const settings = [
      { cache: 'full' as const, cskv: undefined },
      { cache: 'cskv-16' as const, cskv: path.join(dir, 'cskv-16.safetensors'), bits: 16 },
      { cache: 'cskv-4' as const, cskv: path.join(dir, 'cskv-4.safetensors'), bits: 4 },
    ];
    for (const s of settings) if (s.cskv) writeRandomCskv(s.cskv, QWEN25_05B, 0.2, s.bits!, 32);
    const weightsFileBytes = fs.statSync(path.join(dir, 'model.safetensors')).size;
    const loadPeakRssBytes = loadPeakRss(dir);
    const runs: Run[] = [];
    for (const s of settings) {
      const engine = await OnnxEngine.load(dir, { cskv: s.cskv });
      for (const context of contexts) {
        await engine.truncate(0);
        const prompt = Array.from({ length: context }, (_, i) => (i * 7919 + 13) % QWEN25_05B.vocab);
        const t0 = performance.now();
        await engine.prefill(prompt, { logits: 1 });
        const prefillS = (performance.now() - t0) / 1000;
        const t1 = performance.now();
        for (let i = 0; i < decodeSteps; i++) await engine.prefill([(i * 31 + 5) % QWEN25_05B.vocab]);
        const decodeMs = (performance.now() - t1) / decodeSteps;
        const m = engine.memory();
        const run = { cache: s.cache, context, prefill_tok_s: context / prefillS, decode_ms: decodeMs, kv_bytes_per_token: m.totalBytes / m.tokens, kv_savings_vs_fp16: m.savings };
        process.stderr.write(`${JSON.stringify(run)}\n`);
        runs.push(run);
      }
      await engine.dispose();
    }
    const result = {
      benchmark: 'cpu-onnx',
      model: 'Qwen2.5-0.5B shape, random bf16 weights (f32 in onnxruntime)',
      device: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`,
      date: new Date().toISOString(),
      decode_steps: decodeSteps,
      weights_file_bytes: weightsFileBytes,
      // onnxruntime holds f32 copies of bf16 weights: about twice the file, read tensor by tensor (never the file twice more).
      load_peak_rss_bytes: loadPeakRssBytes,
      fp16_kv_bytes_per_token: 2 * QWEN25_05B.layers * QWEN25_05B.kvHeads * QWEN25_05B.headDim * 2,
      runs,
    };
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
    console.log(table(runs));
    console.log(`\nweights file ${(weightsFileBytes / 2 ** 30).toFixed(2)} GiB (bf16); peak resident memory while loading ${(loadPeakRssBytes / 2 ** 30).toFixed(2)} GiB`);
    console.log(`\nwritten to ${path.relative(process.cwd(), outFile)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function table(runs: Run[]): string {
  const lines = ['| cache | context | prefill tok/s | decode ms/token | KV bytes/token | KV saved vs fp16 |', '|---|---|---|---|---|---|'];
  for (const r of runs) {
    lines.push(`| ${r.cache} | ${r.context} | ${r.prefill_tok_s.toFixed(1)} | ${r.decode_ms.toFixed(1)} | ${Math.round(r.kv_bytes_per_token)} | ${(r.kv_savings_vs_fp16 * 100).toFixed(1)}% |`);
  }
  return lines.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
