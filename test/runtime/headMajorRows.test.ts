import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BiBranchCache } from '../../src/runtime/cache/biBranchCache';
import { HeadMajorRows, capacityFor } from '../../src/runtime/cache/headMajorRows';

const KV_HEADS = 2, HD = 3, D = KV_HEADS * HD;

/** Token t, channel c: 100 t + c for keys, the negation for values: every value says where it belongs. */
function tokens(from: number, count: number): { k: Float32Array; v: Float32Array } {
  const k = Float32Array.from({ length: count * D }, (_, i) => 100 * (from + Math.floor(i / D)) + (i % D));
  return { k, v: k.map((x) => -x) };
}

/** What attention reads: the key of (token, head, channel) in [kvHeads, hd, C], the value in [kvHeads, C, hd]. */
function checkLayout(rows: HeadMajorRows, first: number): void {
  const C = rows.capacity;
  for (let t = 0; t < rows.rows; t++) {
    for (let h = 0; h < KV_HEADS; h++) {
      for (let c = 0; c < HD; c++) {
        const expected = 100 * (first + t) + h * HD + c;
        assert.equal(rows.keys[(h * HD + c) * C + t], expected, `key of token ${t}, head ${h}, channel ${c}`);
        assert.equal(rows.values[(h * C + t) * HD + c], -expected, `value of token ${t}, head ${h}, channel ${c}`);
      }
    }
  }
}

test('capacity: at least 64 slots, a granule of 1/16 of the length rounded to a power of two', () => {
  assert.equal(capacityFor(0), 64);
  assert.equal(capacityFor(64), 64);
  assert.equal(capacityFor(65), 128);
  assert.equal(capacityFor(2049), 2176); // granule 128
  assert.equal(capacityFor(8193), 8704); // granule 512
  for (const n of [1, 100, 1000, 5000, 100000]) {
    const c = capacityFor(n);
    assert.ok(c >= n && c <= Math.max(64, n * 1.07 + 64), `${n} tokens: ${c} slots`);
  }
});

test('appends land head-major, survive growth, dropping the front and truncation, and come back token-major', () => {
  const rows = new HeadMajorRows(KV_HEADS, HD);
  const a = tokens(0, 50);
  rows.append(a.k, a.v, 50);
  checkLayout(rows, 0);
  const b = tokens(50, 100); // grows past 64 slots
  rows.append(b.k, b.v, 100);
  assert.equal(rows.rows, 150);
  assert.ok(rows.capacity >= 150);
  checkLayout(rows, 0);
  rows.dropFront(120); // 30 left: the buffer shrinks back
  assert.equal(rows.rows, 30);
  assert.equal(rows.capacity, 64);
  checkLayout(rows, 120);
  rows.truncate(7);
  checkLayout(rows, 120);
  const back = rows.tokenMajor();
  const expected = tokens(120, 7);
  assert.deepEqual(back.k, expected.k);
  assert.deepEqual(back.v, expected.v);
});

test('a cache in the heads layout holds, truncates, exports and imports what one in the rows layout does', () => {
  const shape = { layers: 2, kvDim: D, window: 4, bits: 16 as const, ranks: { k: [2, 2], v: [3, 3] }, keysRotated: true };
  const byRows = new BiBranchCache(shape);
  const byHeads = new BiBranchCache(shape, { kvHeads: KV_HEADS, headDim: HD });
  assert.equal(byHeads.fullLayout, 'heads');
  assert.throws(() => new BiBranchCache(shape, { kvHeads: 4, headDim: HD }), /not 6/);
  const feed = (from: number, count: number): void => {
    for (const cache of [byRows, byHeads]) {
      const { k, v } = tokens(from, count);
      for (let l = 0; l < 2; l++) cache.append(l, count, k, v, new Float32Array(count * 2).fill(from), new Float32Array(count * 3).fill(from));
      cache.commit(count);
    }
  };
  feed(0, 70);
  feed(70, 3);
  assert.equal(byHeads.inputs(1).fullTokens, 1);
  assert.deepEqual(byHeads.exportState(), byRows.exportState());
  byHeads.truncate(71);
  byRows.truncate(71);
  assert.deepEqual(byHeads.exportState(), byRows.exportState());
  const restored = new BiBranchCache(shape, { kvHeads: KV_HEADS, headDim: HD });
  restored.importState(byRows.exportState());
  assert.deepEqual(restored.exportState(), byRows.exportState());
  assert.equal(restored.inputs(0).capacity, 64);
});

test('reserve: the room is allocated once, the capacity attention reads still grows as without it, truncation after it is exact', () => {
  const reserved = new HeadMajorRows(KV_HEADS, HD);
  const grown = new HeadMajorRows(KV_HEADS, HD);
  const feed = (from: number, count: number): void => {
    for (const rows of [reserved, grown]) {
      const { k, v } = tokens(from, count);
      rows.append(k, v, count);
    }
  };
  feed(0, 50);
  reserved.reserve(1000);
  assert.equal(reserved.reserved, capacityFor(1000));
  assert.equal(reserved.capacity, 64);
  checkLayout(reserved, 0);
  reserved.reserve(500); // less than the room: nothing changes
  assert.equal(reserved.reserved, capacityFor(1000));
  const buffer = reserved.keys.buffer;
  for (let from = 50; from < 1000; from += 95) {
    feed(from, 95);
    assert.equal(reserved.keys.buffer, buffer, `${reserved.rows} tokens: the keys were reallocated`);
    assert.equal(reserved.capacity, grown.capacity, `${reserved.rows} tokens: capacity`);
    assert.equal(reserved.keys.length, KV_HEADS * HD * reserved.capacity);
    checkLayout(reserved, 0);
  }
  assert.deepEqual(reserved.tokenMajor(), grown.tokenMajor());
  reserved.truncate(900); // still fits the room: kept
  assert.equal(reserved.keys.buffer, buffer);
  checkLayout(reserved, 0);
  reserved.truncate(10); // the room far exceeds the tokens: given back
  assert.equal(reserved.capacity, 64);
  assert.equal(reserved.reserved, 64);
  checkLayout(reserved, 0);
  assert.deepEqual(reserved.tokenMajor(), tokens(0, 10));
  const more = tokens(10, 100); // and grows again
  reserved.append(more.k, more.v, 100);
  assert.equal(reserved.capacity, capacityFor(110));
  checkLayout(reserved, 0);
});
