import assert from 'node:assert/strict';
import { WorkspaceSession } from '../../src/workspace/session';
import { decodeSnapshot } from '../../src/runtime/cache/cacheSnapshot';

/** The token ids the session's cache holds, read from its snapshot. */
export async function historyOf(session: WorkspaceSession): Promise<number[]> {
  return decodeSnapshot(await session.engine.snapshot()).history;
}

/** Logits after appending the same probe to the cache, then truncated away: equal caches give equal logits. */
export async function probe(session: WorkspaceSession): Promise<Float32Array> {
  const base = session.engine.length;
  const logits = await session.engine.prefill([9707, 11, 1879], { logits: 3 });
  await session.engine.truncate(base);
  return logits;
}

/** `fresh`, prefilled from scratch, holds the same cache as `session`: layout, token ids, memory and logits. */
export async function assertSameCache(fresh: WorkspaceSession, session: WorkspaceSession): Promise<void> {
  assert.deepEqual(fresh.workspaceContext!.layoutPaths, session.workspaceContext!.layoutPaths);
  assert.deepEqual(await historyOf(fresh), await historyOf(session));
  assert.deepEqual(fresh.engine.memory(), session.engine.memory());
  assert.deepEqual(Array.from(await probe(fresh)), Array.from(await probe(session)));
}
