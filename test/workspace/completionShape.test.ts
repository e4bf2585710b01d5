// Where a completion looks: the window around the cursor and the one-line / block decision (src/workspace/completionShape.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMPLETION_WINDOW, completionShape, isBlockStart, looksBinary, prefixStart } from '../../src/workspace/completionShape';

test('completion shape: multi-line at a block start, nothing mid-word or before code, nothing in a binary file', () => {
  assert.equal(isBlockStart('    ', 'def f(x):'), true);
  assert.equal(isBlockStart('  ', 'function f() {'), true);
  assert.equal(isBlockStart('  ', 'if (x) { // then'), true);
  assert.equal(isBlockStart('', 'items.map((x) =>'), true);
  assert.equal(isBlockStart('    ', 'return x'), false);
  assert.equal(isBlockStart('const x = ', 'foo {'), false, 'code before the cursor: one line');
  assert.equal(isBlockStart('class A:', undefined), true, 'at the end of a line that opens a block');
  assert.equal(completionShape('fooBar', 3), undefined, 'inside a word');
  assert.equal(completionShape('x = f(a) + 1', 6), undefined, 'before code on the same line');
  assert.deepEqual(completionShape('f(', 2), { prefix: 'f(', suffix: '', multiline: true, beforeCursor: 'f(' });
  assert.equal(completionShape('call()', 5)?.multiline, false, 'before closing brackets is fine');
  assert.equal(completionShape('\u0000\u0001ELF', 2), undefined);
  assert.equal(looksBinary('plain text'), false);
  // A 10,000-line file: the window around the cursor is what a prompt after the context carries.
  const big = Array.from({ length: 10_000 }, (_, i) => `line_${i} = ${i}`).join('\n');
  const shape = completionShape(big, big.indexOf('\nline_5000 '))!;
  const { prefixChars, anchorStepChars, suffixChars } = COMPLETION_WINDOW;
  assert.ok(shape.prefix.length >= prefixChars / 2 && shape.prefix.length <= prefixChars + anchorStepChars, `prefix of ${shape.prefix.length}`);
  // The suffix ends at a line's end: whole lines (17 characters each here) up to suffixChars.
  const cursor = big.indexOf('\nline_5000 ');
  assert.ok(shape.suffix.length <= suffixChars && shape.suffix.length > suffixChars - 17, `suffix of ${shape.suffix.length}`);
  assert.equal(big[cursor + shape.suffix.length], '\n', 'the suffix ends at a line end');
  // ... unless the cursor's own line runs past it: then it is cut there.
  const long = `f(${' '.repeat(150)})\nnext`;
  assert.equal(completionShape(long, 2)!.suffix, long.slice(2, 2 + suffixChars));
  assert.equal(completionShape('f(\n  a)\n', 2)!.suffix, '\n  a)\n');
  assert.ok(shape.prefix.endsWith('line_4999 = 4999') && shape.suffix.startsWith('\nline_5000 = 5000'));
  assert.ok(shape.prefix.startsWith('line_'), 'the prefix starts at a line');
  // The whole text before the cursor too, for a completion that continues the resident file.
  assert.equal(shape.beforeCursor, big.slice(0, big.indexOf('\nline_5000 ')));
});

test('completion shape: the prefix keeps its start while the cursor moves forward, so the next request reuses its tokens', () => {
  const big = Array.from({ length: 2000 }, (_, i) => `value_${i} = ${i}`).join('\n');
  const from = big.indexOf('\nvalue_900 ');
  const starts = new Set<number>();
  // The cursor at every line end over ~1000 characters: the start moves at most once (when the anchor steps).
  for (let offset = from; offset < from + 1000; offset = big.indexOf('\n', offset + 1)) starts.add(prefixStart(big, offset));
  assert.ok(starts.size <= 2, `the prefix start moved ${starts.size - 1} times`);
  for (const s of starts) assert.ok(s === 0 || big[s - 1] === '\n');
  assert.equal(prefixStart(big, 100), 0, 'near the top the prefix is the whole text before the cursor');
});
