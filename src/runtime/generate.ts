// Autoregressive generation over any engine: prefill the prompt, then decode token by token until a stop
// token, a stop on the generated text, the token limit or cancellation (checked between tokens). The host samples the
// first token from the prompt's logits; later ones come from the engine's own sampler where it has one
// (Engine.decodeSampled, with the same settings and draws), else from the host's.
import type { StopReason } from '../protocol';
import type { Engine } from './engine';
import { CancelledError } from './errors';
import { Sampler, type SamplingOptions } from './sampler';
import { StreamingDecoder } from './streamingDecoder';
import type { ModelTokenizer } from './tokenizer';

export type { StopReason } from '../protocol';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number;
  stopTokens?: readonly number[];
  signal?: AbortSignal | undefined;
  onToken?: (token: number) => void;
  onPrefillProgress?: (done: number, total: number) => void;
  /** The prompt as one forward pass where it fits in one chunk (PrefillOptions.onePass). */
  onePassPrompt?: boolean;
  /** Decodes the generated tokens as they come (special tokens left out): `onText`, `stopWhen` and the result's text. */
  tokenizer?: Pick<ModelTokenizer, 'decode'> | undefined;
  /** Each new piece of text, in order; together they are the result's text. Needs `tokenizer`. */
  onText?: (piece: string) => void;
  /** Ends generation (stopReason 'stop-text') once the text so far is complete, e.g. a line for a one-line completion. */
  stopWhen?: (text: string) => boolean;
}

export interface GenerateResult {
  tokens: number[];
  /** The decoded text ('' without a tokenizer). */
  text: string;
  stopReason: StopReason;
  prefillMs: number;
  decodeMs: number;
}

export async function generate(engine: Engine, prompt: readonly number[], options: GenerateOptions = {}): Promise<GenerateResult> {
  const maxNewTokens = options.maxNewTokens ?? 128;
  const stop = new Set(options.stopTokens ?? []);
  const sampler = new Sampler(options);
  if (options.stopWhen && !options.tokenizer) throw new RangeError('generate: stopWhen needs a tokenizer to decode the text');
  const decoder = options.tokenizer && new StreamingDecoder(options.tokenizer, { skipSpecialTokens: true });
  let text = '';
  const emit = (piece: string): void => {
    if (!piece) return;
    text += piece;
    options.onText?.(piece);
  };
  const tokens: number[] = [];
  const started = performance.now();
  let logits: Float32Array;
  try {
    logits = await engine.prefill(prompt, { logits: 1, signal: options.signal, onProgress: options.onPrefillProgress, onePass: options.onePassPrompt });
  } catch (err) {
    if (err instanceof CancelledError) return { tokens, text, stopReason: 'cancelled', prefillMs: performance.now() - started, decodeMs: 0 };
    throw err;
  }
  const prefillMs = performance.now() - started;
  const decodeStart = performance.now();
  let stopReason: StopReason = 'max-tokens';
  let token = sampler.sample(logits);
  while (tokens.length < maxNewTokens) {
    tokens.push(token);
    options.onToken?.(token);
    if (decoder) emit(decoder.push(token));
    if (stop.has(token)) {
      stopReason = 'stop-token';
      break;
    }
    if (options.stopWhen?.(text)) {
      stopReason = 'stop-text';
      break;
    }
    if (tokens.length >= maxNewTokens) break;
    if (options.signal?.aborted) {
      stopReason = 'cancelled';
      break;
    }
    token = engine.decodeSampled
      ? await engine.decodeSampled(token, sampler.step())
      : sampler.sample(await engine.prefill([token], { logits: 1 }));
  }
  if (decoder) emit(decoder.flush());
  return { tokens, text, stopReason, prefillMs, decodeMs: performance.now() - decodeStart };
}
