// Decode ms/token of this build's CPU engine against another build's (a checkout of another commit, built), in one
// process: both load the same random Qwen2.5-0.5B-shaped model (q8 weights; full cache and CSKV 16-bit), prefill
// the same prompt, then decode in turns, one step each, so a change in a shared machine's load falls on both alike.
// Prints the median step of each and their ratio, and writes JSON.
//   node out/bench/decodeAB.js --before /path/to/other/checkout [--context 512] [--decode 16] [--threads N] [--out FILE]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { OnnxEngine } from '../src/runtime/backends/onnxEngine';
import { QWEN25_05B, writeRandomCskv, writeRandomModel } from '../test/support/randomModel';

type Loader = typeof OnnxEngine.load;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function compare(before: Loader, dir: string, cskv: string | undefined, context: number, decode: number, threads: number): Promise<{ before_ms: number; after_ms: number }> {
  const options = { weights: 'q8' as const, threads, cskv };
  const engines = [await before(dir, options), await OnnxEngine.load(dir, options)];
  const steps: number[][] = [[], []];
  try {
    const vocab = engines[0]!.info.config.vocabSize;
    const prompt = Array.from({ length: context }, (_, i) => (i * 7919 + 13) % vocab);
    for (const e of engines) await e.prefill(prompt, { logits: 1 });
    for (let i = 0; i < decode; i++) {
      // Which build goes first alternates too.
      for (const which of i % 2 === 0 ? [0, 1] : [1, 0]) {
        const t0 = performance.now();
        await engines[which]!.prefill([(i * 31 + 5) % vocab]);
        steps[which]!.push(performance.now() - t0);
      }
    }
  } finally {
    await Promise.all(engines.map((e) => e.dispose()));
  }
  return { before_ms: median(steps[0]!), after_ms: median(steps[1]!) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      before: { type: 'string' }, context: { type: 'string', default: '512' }, decode: { type: 'string', default: '16' },
      threads: { type: 'string', default: String(os.cpus().length) }, out: { type: 'string' },
    },
  });
  if (!values.before) throw new Error('--before: a checkout of the build to compare against (its out/ built)');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const before = (require(path.resolve(values.before, 'out/src/runtime/backends/onnxEngine.js')) as { OnnxEngine: typeof OnnxEngine }).OnnxEngine;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-ab-'));
  const rows: { cache: string; context: number; before_ms: number; after_ms: number; ratio: number }[] = [];
  const context = Number(values.context);
  try {
    process.stderr.write(`writing a random 0.5b-shaped Qwen2 model to ${dir} ...\n`);
    writeRandomModel(dir, QWEN25_05B);
    writeRandomCskv(path.join(dir, 'cskv-16.safetensors'), QWEN25_05B, 0.2, 16, 32);
    for (const cache of ['full', 'cskv-16']) {
      const r = await compare(before.load.bind(before), dir, cache === 'full' ? undefined : path.join(dir, 'cskv-16.safetensors'), context, Number(values.decode), Number(values.threads));
      rows.push({ cache, context, ...r, ratio: r.after_ms / r.before_ms });
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log('| cache | context | before (ms/token, median) | after | after / before |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.cache} | ${r.context} | ${r.before_ms.toFixed(1)} | ${r.after_ms.toFixed(1)} | ${r.ratio.toFixed(2)} |`);
  const outFile = values.out ?? path.join(__dirname, '..', '..', 'bench', 'results', 'decode-ab.json');
  fs.writeFileSync(outFile, `${JSON.stringify({ benchmark: 'decode-ab', before: values.before, threads: Number(values.threads), load_average: os.loadavg(), date: new Date().toISOString(), runs: rows }, null, 2)}\n`);
}

if (require.main === module) void main();
