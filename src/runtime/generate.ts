// Autoregressive generation over any engine: prefill the prompt, then decode token by token until a stop
// token, the token limit or cancellation (checked between tokens).
import type { Engine } from './engine';
import { CancelledError } from './errors';
import { Sampler, type SamplingOptions } from './sampler';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number;
  stopTokens?: readonly number[];
  signal?: AbortSignal | undefined;
  onToken?: (token: number) => void;
  onPrefillProgress?: (done: number, total: number) => void;
}

export type StopReason = 'stop-token' | 'max-tokens' | 'cancelled';

export interface GenerateResult {
  tokens: number[];
  stopReason: StopReason;
  prefillMs: number;
  decodeMs: number;
}

export async function generate(engine: Engine, prompt: readonly number[], options: GenerateOptions = {}): Promise<GenerateResult> {
  const maxNewTokens = options.maxNewTokens ?? 128;
  const stop = new Set(options.stopTokens ?? []);
  const sampler = new Sampler(options);
  const tokens: number[] = [];
  const started = performance.now();
  let logits: Float32Array;
  try {
    logits = await engine.prefill(prompt, { logits: 1, signal: options.signal, onProgress: options.onPrefillProgress });
  } catch (err) {
    if (err instanceof CancelledError) return { tokens, stopReason: 'cancelled', prefillMs: performance.now() - started, decodeMs: 0 };
    throw err;
  }
  const prefillMs = performance.now() - started;
  const decodeStart = performance.now();
  let stopReason: StopReason = 'max-tokens';
  while (tokens.length < maxNewTokens) {
    const token = sampler.sample(logits);
    tokens.push(token);
    options.onToken?.(token);
    if (stop.has(token)) {
      stopReason = 'stop-token';
      break;
    }
    if (tokens.length >= maxNewTokens) break;
    if (options.signal?.aborted) {
      stopReason = 'cancelled';
      break;
    }
    logits = await engine.prefill([token], { logits: 1 });
  }
  return { tokens, stopReason, prefillMs, decodeMs: performance.now() - decodeStart };
}
