// The cskv-code command line. Other tools and checks call it, so its commands, flags and JSON stay stable.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { OnnxEngine } from './backends/onnxEngine';
import type { CompressedBits } from './cache/quantizer';
import type { Engine } from './engine';
import { RuntimeError } from './errors';
import { generate } from './generate';
import { StreamingDecoder } from './streamingDecoder';
import { ModelTokenizer } from './tokenizer';

const USAGE = `usage:
  cskv-code generate --model DIR [--cskv FILE|off] [--window N] [--bits 16|8|4|2]
                     (--prompt TEXT | --prompt-ids 1,2,3) [--chat] [--max-new-tokens N]
                     [--greedy | --temperature T --top-p P --top-k K --seed S] [--json]
  cskv-code logits   --model DIR [--cskv FILE|off] [--window N] [--bits B] --prompt-ids 1,2,3 [--last N]

--cskv defaults to DIR/cskv.safetensors when that file exists, else off.
`;

class UsageError extends Error {}

export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'generate':
        return await generateCommand(rest, out, err);
      case 'logits':
        return await logitsCommand(rest, out);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err.write(`cskv-code: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    if (e instanceof RuntimeError) {
      err.write(`cskv-code: ${e.message} [${e.code}]\n`);
      return 1;
    }
    throw e;
  }
}

const engineFlags = {
  model: { type: 'string' },
  cskv: { type: 'string' },
  window: { type: 'string' },
  bits: { type: 'string' },
  chunk: { type: 'string' },
  'prompt-ids': { type: 'string' },
} as const;

type EngineFlags = { model?: string; cskv?: string; window?: string; bits?: string; chunk?: string };

async function loadEngine(v: EngineFlags): Promise<Engine> {
  if (!v.model) throw new UsageError('--model DIR is required');
  const model = path.resolve(v.model);
  let cskv: string | undefined;
  if (v.cskv === undefined) {
    const beside = path.join(model, 'cskv.safetensors');
    cskv = fs.existsSync(beside) ? beside : undefined;
  } else if (v.cskv !== 'off') {
    cskv = path.resolve(v.cskv);
  }
  const bits = optionalInt(v.bits, '--bits');
  if (bits !== undefined && ![16, 8, 4, 2].includes(bits)) throw new UsageError(`--bits must be 16, 8, 4 or 2, got ${bits}`);
  return OnnxEngine.load(model, {
    cskv,
    window: optionalInt(v.window, '--window'),
    bits: bits as CompressedBits | undefined,
    chunkSize: optionalInt(v.chunk, '--chunk'),
  });
}

function optionalInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

function parseIds(value: string): number[] {
  const ids = value.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) throw new UsageError(`--prompt-ids must be comma-separated token ids, got "${value}"`);
  return ids;
}

async function generateCommand(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
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
    },
  });
  if ((v.prompt === undefined) === (v['prompt-ids'] === undefined)) throw new UsageError('give exactly one of --prompt TEXT and --prompt-ids 1,2,3');
  const number = (s: string | undefined, flag: string): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got "${s}"`);
    return n;
  };
  const engine = await loadEngine(v);
  try {
    // A tokenizer is needed for text in or out; with --prompt-ids and no tokenizer.json the ids are still printed.
    const hasTokenizer = fs.existsSync(path.join(engine.info.modelDir, 'tokenizer.json'));
    const tokenizer = v.prompt !== undefined || hasTokenizer ? ModelTokenizer.load(engine.info.modelDir) : undefined;
    let prompt: number[];
    if (v.prompt !== undefined) {
      const text = v.chat ? tokenizer!.applyChatTemplate([{ role: 'user', content: v.prompt }], { addGenerationPrompt: true }) : v.prompt;
      prompt = tokenizer!.encode(text, { addSpecialTokens: !v.chat });
    } else {
      prompt = parseIds(v['prompt-ids']!);
    }
    const stopTokens = [...new Set([...(tokenizer?.eosTokenIds ?? []), ...engine.info.config.eosTokenIds])];
    const decoder = tokenizer && !v.json ? new StreamingDecoder(tokenizer, { skipSpecialTokens: true }) : undefined;
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
        onToken: (t) => {
          if (decoder) out.write(decoder.push(t));
          else if (!v.json) out.write(`${t} `);
        },
      });
      const memory = engine.memory();
      if (v.json) {
        const text = tokenizer ? tokenizer.decode(result.tokens, { skipSpecialTokens: true }) : '';
        out.write(`${JSON.stringify({ tokens: result.tokens, text, stopReason: result.stopReason, promptTokens: prompt.length, memory })}\n`);
      } else {
        if (decoder) out.write(decoder.flush());
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

async function logitsCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: { ...engineFlags, last: { type: 'string' } } });
  if (v['prompt-ids'] === undefined) throw new UsageError('--prompt-ids 1,2,3 is required');
  const ids = parseIds(v['prompt-ids']);
  const last = Math.min(optionalInt(v.last, '--last') ?? 1, ids.length);
  const engine = await loadEngine(v);
  try {
    const flat = await engine.prefill(ids, { logits: last });
    const vocab = engine.info.config.vocabSize;
    const rows = Array.from({ length: last }, (_, i) => Array.from(flat.subarray(i * vocab, (i + 1) * vocab)));
    out.write(`${JSON.stringify({ logits: rows })}\n`);
    return 0;
  } finally {
    await engine.dispose();
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
