// cskv-code generate: prompt in (text or ids), tokens out, streamed; --json for tools.
import { parseArgs } from 'node:util';
import { generate } from '../../runtime/generate';
import { ModelTokenizer } from '../../runtime/tokenizer';
import { formatBytes } from '../../shared/formatBytes';
import { type CommandIO, UsageError, engineFlags, loadEngine, optionalInt, parseIds } from './shared';
import { modelHasTokenizer } from '../../runtime/model/modelPath';

/** The flags `cskv-code generate` takes (its usage line in cli.ts names each). */
export const GENERATE_OPTIONS = {
  ...engineFlags,
  prompt: { type: 'string' },
  chat: { type: 'boolean' },
  'max-new-tokens': { type: 'string' },
  greedy: { type: 'boolean' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function generateCommand(argv: string[], { out, err }: CommandIO): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: GENERATE_OPTIONS,
  });
  if ((v.prompt === undefined) === (v['prompt-ids'] === undefined)) throw new UsageError('give exactly one of --prompt TEXT and --prompt-ids 1,2,3');
  const number = (s: string | undefined, flag: string): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got "${s}"`);
    return n;
  };
  const engine = await loadEngine(v, err);
  try {
    // A tokenizer is needed for text in or out; with --prompt-ids and no tokenizer the ids are still printed.
    const hasTokenizer = modelHasTokenizer(engine.info.modelDir);
    const tokenizer = v.prompt !== undefined || hasTokenizer ? ModelTokenizer.load(engine.info.modelDir, engine.info.config) : undefined;
    let prompt: number[];
    if (v.prompt !== undefined) {
      // A raw prompt may write special tokens on purpose; in a chat message they are the text the user typed.
      prompt = v.chat
        ? tokenizer!.encodeChat([{ role: 'user', content: v.prompt }], { addGenerationPrompt: true })
        : tokenizer!.encode(v.prompt, { addSpecialTokens: true });
    } else {
      prompt = parseIds(v['prompt-ids']!);
    }
    // The tokenizer's end ids include config.json's; without a tokenizer, config.json's are all there is.
    const stopTokens = tokenizer ? tokenizer.eosTokenIds : engine.info.config.eosTokenIds;
    const abort = new AbortController();
    const onSignal = (): void => abort.abort();
    process.once('SIGINT', onSignal);
    try {
      const result = await generate(engine, prompt, {
        maxNewTokens: optionalInt(v['max-new-tokens'], '--max-new-tokens') ?? 64,
        greedy: v.greedy === true,
        temperature: number(v.temperature, '--temperature'),
        topP: number(v['top-p'], '--top-p'),
        topK: number(v['top-k'], '--top-k'),
        seed: number(v.seed, '--seed'),
        stopTokens,
        signal: abort.signal,
        tokenizer,
        onText: v.json ? undefined : (piece) => out.write(piece),
        onToken: tokenizer || v.json ? undefined : (t) => out.write(`${t} `),
      });
      const memory = engine.memory();
      if (v.json) {
        out.write(`${JSON.stringify({ tokens: result.tokens, text: result.text, stopReason: result.stopReason, promptTokens: prompt.length, memory })}\n`);
      } else {
        out.write('\n');
        const perToken = result.tokens.length > 1 ? result.decodeMs / (result.tokens.length - 1) : 0;
        err.write(`[${prompt.length} prompt tokens in ${result.prefillMs.toFixed(0)} ms, ${result.tokens.length} generated at ${perToken.toFixed(1)} ms/token, ` +
          `stop: ${result.stopReason}; KV ${formatBytes(memory.totalBytes)} for ${memory.tokens} tokens, ${(memory.savings * 100).toFixed(1)}% saved vs fp16]\n`);
      }
    } finally {
      process.removeListener('SIGINT', onSignal);
    }
    return 0;
  } finally {
    await engine.dispose();
  }
}

