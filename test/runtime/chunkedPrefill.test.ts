import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prefillInChunks } from '../../src/runtime/backends/chunkedPrefill';
import { CancelledError, RuntimeError } from '../../src/runtime/errors';

const VOCAB = 3;
/** A chunk runner that records each chunk and answers row r of a chunk with the logits [id, id, id] of its token. */
function recorder() {
  const chunks: number[][] = [];
  const run = async (chunk: number[], rows: number): Promise<Float32Array> => {
    chunks.push(chunk);
    const out = new Float32Array(rows * VOCAB);
    chunk.slice(chunk.length - rows).forEach((id, r) => out.fill(id, r * VOCAB, (r + 1) * VOCAB));
    return out;
  };
  return { chunks, run };
}

test('chunks follow the cache policy from the cached length, and the last positions\' logits come back in order', async () => {
  const { chunks, run } = recorder();
  const tokens = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0];
  const logits = await prefillInChunks(tokens, { logits: 3 }, { vocab: VOCAB, length: 3, chunkSize: 4, window: 2 }, run);
  // Cached 3: the first chunk ends at the next multiple of W (4); then absolute multiples of the chunk size (8, 12),
  // and the call's last partial block [12, 13) on its own.
  assert.deepEqual(chunks.map((c) => c.length), [1, 4, 4, 1]);
  assert.deepEqual(chunks.flat(), tokens);
  assert.deepEqual([...logits], [1, 1, 1, 2, 2, 2, 0, 0, 0]);
});

test('a bad id is a BAD_ARGUMENT naming it before any chunk runs; an aborted call stops with CancelledError', async () => {
  const { chunks, run } = recorder();
  await assert.rejects(prefillInChunks([1, 7], {}, { vocab: VOCAB, length: 0, chunkSize: 4, window: 2 }, run),
    (e: unknown) => e instanceof RuntimeError && e.code === 'BAD_ARGUMENT' && /token id 7/.test(e.message));
  assert.equal(chunks.length, 0);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(prefillInChunks([1, 2], { signal: controller.signal }, { vocab: VOCAB, length: 0, chunkSize: 4, window: 2 }, run), CancelledError);
});
