// cskv-code perplexity: how well the model predicts a text with the cache as configured (CSKV on by default when
// DIR/cskv.safetensors exists, or --cskv off), the number that says what compression costs in quality.
// The text is scored in consecutive non-overlapping windows of --context tokens, each from an empty cache, fed in
// chunks whose every logit row is scored (log-softmax in float64) while the bi-branch cache fills as in use.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { MemoryReport } from '../../protocol';
import { RuntimeError } from '../../runtime/errors';
import { readModelConfig } from '../../runtime/model/config';
import { ModelTokenizer } from '../../runtime/tokenizer';
import { formatBytes } from '../../shared/formatBytes';
import { type CommandIO, UsageError, engineFlags, loadEngine, optionalInt } from './shared';

/** Logits of one chunk are [chunk, vocab] float32; this bounds them (to ~128 MB) for 150k-token vocabularies. */
const LOGIT_BUDGET_FLOATS = 32 * 1024 * 1024;
const DEFAULT_CHUNK = 512;
/**
 * Tokens scored unless --max-tokens says otherwise: a whole 118k-token file ran for over 15 minutes on two CPU
 * cores; what is left out is said.
 */
const DEFAULT_MAX_TOKENS = 32_768;
const PROGRESS_EVERY_MS = 2000;

/** The flags `cskv-code perplexity` takes (its usage line in cli.ts names each). */
export const PERPLEXITY_OPTIONS = {
  model: engineFlags.model, cskv: engineFlags.cskv, window: engineFlags.window, bits: engineFlags.bits, chunk: engineFlags.chunk, weights: engineFlags.weights,
  file: { type: 'string' }, context: { type: 'string' }, 'max-tokens': { type: 'string' }, json: { type: 'boolean' },
} as const;

export async function perplexityCommand(argv: string[], { out, err }: CommandIO): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: PERPLEXITY_OPTIONS,
  });
  if (v.file === undefined) throw new UsageError('--file TEXT is required');
  const file = path.resolve(v.file);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const contextFlag = optionalInt(v.context, '--context');
  if (contextFlag !== undefined && contextFlag < 2) throw new UsageError('--context must be at least 2 tokens');
  if (!v.model) throw new UsageError('--model DIR is required');
  const maxTokens = optionalInt(v['max-tokens'], '--max-tokens') ?? DEFAULT_MAX_TOKENS;
  // The engine runs with the scoring chunk as its chunk size, so its chunk grid is the one a prefill would use.
  const vocab = readModelConfig(path.resolve(v.model)).vocabSize;
  const rows = Math.max(1, Math.min(optionalInt(v.chunk, '--chunk') ?? DEFAULT_CHUNK, Math.floor(LOGIT_BUDGET_FLOATS / vocab)));
  const engine = await loadEngine({ ...v, chunk: String(rows) });
  try {
    const { config, cskv: cskvInfo } = engine.info;
    const all = ModelTokenizer.load(engine.info.modelDir, engine.info.config).encode(text, { literal: true }); // a file's text: never special ids
    const ids = all.slice(0, maxTokens);
    if (ids.length < all.length) err.write(`perplexity: scoring the first ${ids.length} of the file's ${all.length} tokens (--max-tokens ${maxTokens})\n`);
    let lastProgress = performance.now();
    const started = lastProgress;
    const context = contextFlag ?? config.maxPositions;
    const W = cskvInfo?.window ?? 1;
    const chunkLength = Math.max(W, Math.floor(rows / W) * W); // the engine's own rounding of its chunk size
    let nll = 0, scored = 0, windows = 0;
    let memory: MemoryReport | undefined;
    for (let start = 0; start < ids.length; start += context) {
      const tokens = ids.slice(start, start + context);
      if (tokens.length < 2) break;
      windows++;
      await engine.truncate(0);
      for (let at = 0; at < tokens.length; at += chunkLength) {
        const piece = tokens.slice(at, at + chunkLength);
        const logits = await engine.prefill(piece, { logits: piece.length });
        for (let i = 0; i < piece.length; i++) {
          const next = at + i + 1;
          if (next >= tokens.length) break;
          nll += negativeLogLikelihood(logits.subarray(i * config.vocabSize, (i + 1) * config.vocabSize), tokens[next]!);
          scored++;
        }
        const now = performance.now();
        if (now - lastProgress > PROGRESS_EVERY_MS) {
          lastProgress = now;
          const done = start + at + piece.length;
          const perSecond = done / ((now - started) / 1000);
          err.write(`perplexity: ${done}/${ids.length} tokens, ${perSecond.toFixed(0)} tok/s, ${((ids.length - done) / perSecond).toFixed(0)} s left\n`);
        }
      }
      const m = engine.memory();
      if (!memory || m.tokens > memory.tokens) memory = m;
    }
    if (scored === 0) throw new RuntimeError('BAD_ARGUMENT', `${file}: needs at least 2 tokens to score, has ${ids.length}`);
    const perplexity = Math.exp(nll / scored);
    const kvBytesPerToken = memory!.totalBytes / memory!.tokens;
    if (v.json) {
      out.write(`${JSON.stringify({
        perplexity, tokens: scored, fileTokens: all.length, meanNll: nll / scored, windows, context, chunk: chunkLength,
        cskv: cskvInfo?.file ?? null, bits: cskvInfo?.bits ?? null, window: cskvInfo?.window ?? null,
        kvBytesPerToken, savings: memory!.savings,
      })}\n`);
    } else {
      out.write(`perplexity ${perplexity < 1e6 ? perplexity.toFixed(4) : perplexity.toExponential(4)} over ${scored} tokens (${windows} window${windows > 1 ? 's' : ''} of up to ${context}); ` +
        `KV ${formatBytes(kvBytesPerToken)}/token, ${(memory!.savings * 100).toFixed(1)}% saved vs fp16` +
        `${cskvInfo ? ` (cskv ${cskvInfo.bits} bits, window ${cskvInfo.window})` : ' (cskv off)'}\n`);
    }
    return 0;
  } finally {
    await engine.dispose();
  }
}

/** -log softmax(logits)[target], in float64. */
function negativeLogLikelihood(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return max + Math.log(sum) - logits[target]!;
}
