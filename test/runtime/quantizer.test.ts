import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { blockBytes, dequantiseKeys, dequantiseValues, quantiseKeys, quantiseValues, VALUE_GROUP } from '../../src/runtime/cache/quantizer';
import { floatToHalfBits, halfBitsToFloat, roundToHalf } from '../../src/runtime/half';
import { fixturesDir } from '../support/paths';

test('fp16 rounding matches IEEE round-to-nearest-even at the edges', () => {
  assert.equal(floatToHalfBits(1), 0x3c00);
  assert.equal(floatToHalfBits(-2), 0xc000);
  assert.equal(floatToHalfBits(65504), 0x7bff);
  assert.equal(floatToHalfBits(65520), 0x7c00); // rounds up to infinity
  assert.equal(floatToHalfBits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(floatToHalfBits(2 ** -25), 0x0000); // tie to even: zero
  assert.equal(floatToHalfBits(1 + 2 ** -11), 0x3c00); // tie between 1 and 1+2^-10 goes to even (1)
  assert.equal(floatToHalfBits(1 + 3 * 2 ** -11), 0x3c02); // tie goes to even mantissa 2
  assert.equal(roundToHalf(2 / 3), 0.66650390625);
  for (let h = 0; h < 0x7c00; h += 7) assert.equal(floatToHalfBits(halfBitsToFloat(h)), h);
});

test('key quantisation by hand: 2 bits, per channel over the block', () => {
  // [4 tokens, 2 channels] row-major.
  const rows = [0, -1, 1, -0.5, 2, 0.2, 3, 1];
  const q = quantiseKeys(rows, 4, 2, 2);
  // channel 0: min 0, max 3, scale 1 -> codes 0,1,2,3; channel 1: min -1, scale fp16(2/3) = 0.66650390625.
  assert.deepEqual(Array.from(q.scaleZero).map(halfBitsToFloat), [1, 0, 0.66650390625, -1]);
  const out = new Float32Array(8);
  dequantiseKeys(q, 4, 2, 2, out, 0);
  const s = 0.66650390625;
  assert.deepEqual(Array.from(out), [0, -1, 1, -1 + s, 2, -1 + 2 * s, 3, -1 + 3 * s].map(Math.fround));
  // codes packed four to a byte, little end first: token-major [0,0,1,1,2,2,3,3].
  assert.deepEqual(Array.from(q.codes), [0b01010000, 0b11111010]);
});

test('value quantisation by hand: 4 bits, per token over groups of channels', () => {
  const channels = VALUE_GROUP + 3; // one full group and a short one
  const row = Array.from({ length: channels }, (_, i) => (i < VALUE_GROUP ? i / 2 : 10 + i));
  const q = quantiseValues(row, 1, channels, 4);
  assert.equal(q.scaleZero.length, 4);
  assert.equal(halfBitsToFloat(q.scaleZero[1]!), 0);
  assert.equal(halfBitsToFloat(q.scaleZero[0]!), roundToHalf(15.5 / 15));
  assert.equal(halfBitsToFloat(q.scaleZero[3]!), 10 + VALUE_GROUP);
  const out = new Float32Array(channels);
  dequantiseValues(q, 1, channels, 4, out, 0);
  const step = roundToHalf(15.5 / 15);
  for (let i = 0; i < VALUE_GROUP; i++) assert.ok(Math.abs(out[i]! - row[i]!) <= step / 2 + 1e-6, `channel ${i}`);
  // short group 42..44: scale fp16(2/15), the top code 15 lands one rounding step under 44.
  assert.equal(out[channels - 1], Math.fround(42 + 15 * roundToHalf(2 / 15)));
});

test('a constant run quantises to its value exactly (zero scale)', () => {
  const q = quantiseKeys([0.25, 0.25, 0.25], 3, 1, 4);
  const out = new Float32Array(3);
  dequantiseKeys(q, 3, 1, 4, out, 0);
  assert.deepEqual(Array.from(out), [0.25, 0.25, 0.25]);
});

test('block byte accounting includes codes and fp16 scale/zero pairs', () => {
  assert.equal(blockBytes(32, 8, 10, 16), 32 * 18 * 2);
  // 4 bits: codes 32*8/2 + 32*10/2 bytes, key pairs 8, value pairs 32 tokens x 1 group, 4 bytes a pair.
  assert.equal(blockBytes(32, 8, 10, 4), 128 + 160 + (8 + 32) * 4);
});

interface ReferenceCase {
  bits: 8 | 4 | 2;
  input: number[][] | number[];
  q: number[][] | number[];
  scale: number[];
  zero: number[];
  dequant: number[][] | number[];
}

// Vectors written by test/tools/make_fixtures.py from the float64 reference (test/tools/reference.py).
const reference = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'quantizer.json'), 'utf8')) as {
  key_blocks: ReferenceCase[]; value_tokens: ReferenceCase[]; fp16_round: { input: number[]; output: number[] }[];
};

test('fp16 rounding agrees with numpy', () => {
  for (const c of reference.fp16_round) c.input.forEach((x, i) => assert.ok(Object.is(roundToHalf(x), c.output[i]), `fp16(${x})`));
});

test('key and value quantisation agree with the reference: codes, scales, zeros and dequantised values', () => {
  const check = (c: ReferenceCase, kind: 'keys' | 'values'): void => {
    const rows = (kind === 'keys' ? c.input : [c.input]) as number[][];
    const tokens = rows.length, channels = rows[0]!.length;
    const flat = Float32Array.from(rows.flat());
    const q = (kind === 'keys' ? quantiseKeys : quantiseValues)(flat, tokens, channels, c.bits);
    const scales = Array.from(q.scaleZero.filter((_, i) => i % 2 === 0), halfBitsToFloat);
    const zeros = Array.from(q.scaleZero.filter((_, i) => i % 2 === 1), halfBitsToFloat);
    assert.deepEqual(scales, c.scale, `${kind} ${c.bits}-bit scales`);
    assert.deepEqual(zeros, c.zero, `${kind} ${c.bits}-bit zeros`);
    const out = new Float32Array(tokens * channels);
    (kind === 'keys' ? dequantiseKeys : dequantiseValues)(q, tokens, channels, c.bits, out, 0);
    const expected = (kind === 'keys' ? (c.dequant as number[][]).flat() : (c.dequant as number[]));
    // The engine keeps dequantised features in float32; the reference in float64.
    expected.forEach((x, i) => assert.equal(out[i], Math.fround(x), `${kind} ${c.bits}-bit value ${i}`));
  };
  assert.ok(reference.key_blocks.length > 0 && reference.value_tokens.length > 0);
  for (const c of reference.key_blocks) check(c, 'keys');
  for (const c of reference.value_tokens) check(c, 'values');
});
