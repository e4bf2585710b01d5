// The head-major graphs' masks (headMajorMasks.ts) against what each query sees, read off positions: causal, the
// cache's held slots only, the compressed keys but never the padding key, and a sliding window where the model has
// one. A mask of one row stands for every row (the graph's Add broadcasts it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type MaskShape, headMajorMasks } from '../../src/runtime/backends/headMajorMasks';

/** Whether the query at position n sees position p. */
function sees(n: number, p: number, sliding: number | undefined): boolean {
  return p <= n && (sliding === undefined || p > n - sliding);
}

/** Mask `name`'s value for row r*T + t and column j, a one-row mask read as every row. */
function value(masks: ReturnType<typeof headMajorMasks>, name: string, row: number, column: number): number {
  const tensor = masks[name]!;
  const [rows, width] = tensor.dims as [number, number];
  return (tensor.data as Float32Array)[(rows === 1 ? 0 : row) * width + column]!;
}

function check(s: MaskShape): Record<string, readonly number[]> {
  const masks = headMajorMasks(s);
  const { start, T, Sc, C, nRep, sliding } = s;
  const held = start - Sc;
  for (let r = 0; r < nRep; r++) {
    for (let t = 0; t < T; t++) {
      const row = r * T + t;
      const n = start + t;
      const expect = (visible: boolean): number => (visible ? 0 : -Infinity);
      for (let j = 0; j < C; j++) assert.equal(value(masks, 'mask_cache', row, j), expect(j < held && sees(n, Sc + j, sliding)), `cache slot ${j}, query ${n}`);
      for (let j = 0; j < T; j++) assert.equal(value(masks, 'mask_chunk', row, j), expect(sees(n, start + j, sliding)), `chunk key ${j}, query ${n}`);
      if (!s.compressed) continue;
      for (let j = 0; j < Sc; j++) assert.equal(value(masks, 'mask_compressed', row, j), expect(sees(n, j, sliding)), `compressed key ${j}, query ${n}`);
      assert.equal(value(masks, 'mask_compressed', row, Sc), -Infinity, 'the padding key');
    }
  }
  return Object.fromEntries(Object.entries(masks).map(([name, t]) => [name, t.dims]));
}

test('without a sliding window the cache\'s and the compressed keys\' masks are one row', () => {
  assert.deepEqual(check({ start: 70, T: 5, Sc: 64, C: 64, nRep: 3, compressed: true, sliding: undefined }),
    { mask_cache: [1, 64], mask_chunk: [15, 5], mask_compressed: [1, 65] });
  // A window no query of the chunk reaches past is no window.
  assert.deepEqual(check({ start: 40, T: 4, Sc: 32, C: 64, nRep: 2, compressed: true, sliding: 44 }).mask_compressed, [1, 33]);
  assert.deepEqual(check({ start: 3, T: 2, Sc: 0, C: 64, nRep: 2, compressed: false, sliding: undefined }), { mask_cache: [1, 64], mask_chunk: [4, 2] });
});

test('where a sliding window hides positions from some query, every row is given', () => {
  assert.deepEqual(check({ start: 40, T: 4, Sc: 32, C: 64, nRep: 2, compressed: true, sliding: 20 }),
    { mask_cache: [8, 64], mask_chunk: [8, 4], mask_compressed: [8, 33] });
  check({ start: 40, T: 6, Sc: 32, C: 64, nRep: 2, compressed: true, sliding: 3 });
  check({ start: 10, T: 3, Sc: 0, C: 64, nRep: 1, compressed: false, sliding: 8 });
});
