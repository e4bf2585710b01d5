import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrowableRows } from '../../src/runtime/cache/growableRows';

const WIDTH = 3;

/** Row r holds r in every column: what comes back shows which rows are where. */
const rowsFrom = (from: number, count: number): Float32Array => Float32Array.from({ length: count * WIDTH }, (_, i) => from + Math.floor(i / WIDTH));

test('reserve: the buffer grows once, the rows held are kept, appends up to it and truncation after it are exact', () => {
  const rows = new GrowableRows(WIDTH, 4);
  rows.append(rowsFrom(0, 3), 3);
  rows.reserve(1000);
  assert.equal(rows.capacityBytes, 1000 * WIDTH * 4);
  assert.deepEqual(rows.view(), rowsFrom(0, 3));
  rows.reserve(10); // less than the room: nothing changes
  assert.equal(rows.capacityBytes, 1000 * WIDTH * 4);
  const buffer = rows.view().buffer;
  for (let from = 3; from < 1000; from += 99) rows.append(rowsFrom(from, Math.min(99, 1000 - from)), Math.min(99, 1000 - from));
  assert.equal(rows.rows, 1000);
  assert.equal(rows.view().buffer, buffer, 'appends within the reservation reallocated');
  assert.deepEqual(rows.view(), rowsFrom(0, 1000));
  rows.truncate(7);
  assert.deepEqual(rows.view(), rowsFrom(0, 7));
  rows.append(rowsFrom(7, 2), 2);
  assert.deepEqual(rows.view(), rowsFrom(0, 9));
  assert.equal(rows.view().buffer, buffer);
});

test('appends past the room grow it to at least twice its size', () => {
  const rows = GrowableRows.half(WIDTH);
  rows.append(new Uint16Array(64 * WIDTH).fill(1), 64);
  assert.equal(rows.capacityBytes, 64 * WIDTH * 2);
  rows.append(new Uint16Array(WIDTH).fill(2), 1);
  assert.equal(rows.capacityBytes, 128 * WIDTH * 2);
  assert.deepEqual(Array.from(rows.slice(63, 65)), [1, 1, 1, 2, 2, 2]);
});
