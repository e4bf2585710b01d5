// One prefill call as the chunks the cache policy allows (cachePolicy.nextChunkEnd), with the logits of the call's
// last positions gathered: the loop every backend that runs a model chunk by chunk shares (onnx and WebGPU, CUDA).
import { nextChunkEnd } from '../cache/cachePolicy';
import type { PrefillOptions } from '../engine';
import { CancelledError, RuntimeError } from '../errors';

export interface ChunkedPrefill {
  vocab: number;
  /** Tokens cached when the call starts. */
  length: number;
  /** The longest chunk the backend runs. */
  chunkSize: number;
  /** The cache's block window W (the chunk size when CSKV is off). */
  window: number;
}

/**
 * Checks every id, then runs `runChunk` on each chunk in order with the number of logit rows wanted from it (those
 * among the call's last `options.logits` positions, default 1) and returns those rows, row-major.
 */
export async function prefillInChunks(
  tokens: readonly number[],
  options: PrefillOptions,
  call: ChunkedPrefill,
  runChunk: (chunk: number[], logitRows: number) => Promise<Float32Array | null>,
): Promise<Float32Array> {
  const { vocab } = call;
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new RuntimeError('BAD_ARGUMENT', `token id ${t} is outside the vocabulary (0..${vocab - 1})`);
  }
  const wanted = Math.min(options.logits ?? 1, tokens.length);
  const logits = new Float32Array(wanted * vocab);
  let done = 0;
  while (done < tokens.length) {
    if (options.signal?.aborted) throw new CancelledError();
    const at = call.length + done;
    const end = options.onePass && tokens.length - done <= call.chunkSize ? tokens.length : nextChunkEnd(at, call.length + tokens.length, call.chunkSize, call.window) - call.length;
    // Logit rows wanted from this chunk: those among the last `wanted` positions of the whole call.
    const firstWanted = Math.max(tokens.length - wanted, done);
    const rows = Math.max(0, end - firstWanted);
    const out = await runChunk(tokens.slice(done, end), rows);
    if (rows > 0 && out) logits.set(out, (firstWanted - (tokens.length - wanted)) * vocab);
    done = end;
    options.onProgress?.(done, tokens.length);
  }
  return logits;
}
