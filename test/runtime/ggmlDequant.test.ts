// The dequantisers against values worked out by hand from ggml's block layouts (ggml-common.h) and formulas
// (dequantize_row_* in ggml-quants.c). Each block is assembled byte by byte; the expected numbers are computed in
// the comments, not by any code under test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dequantise } from '../../src/runtime/model/ggmlDequant';
import { ggmlType } from '../../src/runtime/model/ggmlTypes';

const F16_ONE = [0x00, 0x3c]; // 1.0
const F16_HALF = [0x00, 0x38]; // 0.5
const F16_TWO = [0x00, 0x40]; // 2.0
const F16_QUARTER = [0x00, 0x34]; // 0.25

test('F16 and BF16', () => {
  // f16 0x3c00 = 1, 0xc000 = -2, 0x0001 = 2^-24 (smallest subnormal); bf16 0x3f80 = 1, 0xc040 = -3
  assert.deepEqual([...dequantise(ggmlType('F16'), Uint8Array.from([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00]), 3)], [1, -2, 2 ** -24]);
  assert.deepEqual([...dequantise(ggmlType('BF16'), Uint8Array.from([0x80, 0x3f, 0x40, 0xc0]), 2)], [1, -3]);
});

test('Q8_0: x = d * q', () => {
  const block = new Uint8Array(34);
  block.set(F16_HALF, 0);
  block[2] = 0x80; // -128 -> -64
  block[3] = 0x7f; // 127 -> 63.5
  block[4] = 0x03; // 3 -> 1.5
  block[33] = 0xff; // -1 -> -0.5
  const x = dequantise(ggmlType('Q8_0'), block, 32);
  assert.deepEqual([x[0], x[1], x[2], x[3], x[31]], [-64, 63.5, 1.5, 0, -0.5]);
});

test('Q4_0: low nibbles are elements 0-15, high nibbles 16-31, x = d * (q - 8)', () => {
  const block = new Uint8Array(18);
  block.set(F16_TWO, 0);
  block[2] = 0x1f; // element 0: (15 - 8) * 2 = 14; element 16: (1 - 8) * 2 = -14
  block[17] = 0x80; // element 15: (0 - 8) * 2 = -16; element 31: (8 - 8) * 2 = 0
  const x = dequantise(ggmlType('Q4_0'), block, 32);
  assert.deepEqual([x[0], x[16], x[15], x[31], x[1]], [14, -14, -16, 0, -16]);
});

test('Q4_K: 6-bit scales and mins packed in 12 bytes, x = d * scale * q - dmin * min', () => {
  const block = new Uint8Array(144);
  block.set(F16_ONE, 0); // d = 1
  block.set(F16_HALF, 2); // dmin = 0.5
  const scales = 4;
  block[scales + 0] = 3 | (1 << 6); // sub-block 0 scale 3; top bits give sub-block 4's scale its bit 4
  block[scales + 1] = 4; // sub-block 1 scale 4
  block[scales + 4] = 2 | (2 << 6); // sub-block 0 min 2; top bits: sub-block 4's min gets 2 << 4
  block[scales + 5] = 1; // sub-block 1 min 1
  block[scales + 8] = 0x25; // sub-block 4: scale 5 | 16 = 21, min 2 | 32 = 34
  const qs = 16;
  block[qs + 0] = 0x7a; // element 0 (sub 0, low nibble 10): 3 * 10 - 0.5 * 2 = 29; element 32 (sub 1, high 7): 4 * 7 - 0.5 * 1 = 27.5
  block[qs + 64] = 0x03; // element 128 (sub 4, low 3): 21 * 3 - 0.5 * 34 = 46; element 160 (sub 5, scale 0, min 0): 0
  const x = dequantise(ggmlType('Q4_K'), block, 256);
  assert.deepEqual([x[0], x[32], x[128], x[160], x[1]], [29, 27.5, 46, 0, -1]); // x[1]: 3 * 0 - 1 = -1
});

test('Q6_K: 4 low bits in ql, 2 high bits in qh, int8 scale per 16, x = d * scale * (q - 32)', () => {
  const block = new Uint8Array(210);
  block.set(F16_QUARTER, 208); // d = 0.25
  const ql = 0, qh = 128, sc = 192;
  block[sc + 0] = 2;
  block[sc + 2] = 0xfd; // -3
  block[sc + 4] = 4;
  block[sc + 6] = 1;
  block[sc + 8] = 1; // first scale of the second half
  block[ql + 0] = 0x95; // low nibble 5 (element 0), high nibble 9 (element 64)
  block[ql + 32] = 0x7c; // low nibble 12 (element 32), high nibble 7 (element 96)
  block[qh + 0] = 0x1b; // bits 0-1 = 3 (element 0), 2-3 = 2 (32), 4-5 = 1 (64), 6-7 = 0 (96)
  const x = dequantise(ggmlType('Q6_K'), block, 256);
  // 0: q = 5 | 3 << 4 = 53 -> 0.25 * 2 * 21 = 10.5;  32: 12 | 2 << 4 = 44 -> 0.25 * -3 * 12 = -9
  // 64: 9 | 1 << 4 = 25 -> 0.25 * 4 * -7 = -7;       96: 7 -> 0.25 * 1 * -25 = -6.25
  // 1: q = 0 -> 0.25 * 2 * -32 = -16;  16: scale 0 -> 0.25 * 0 * -32 = -0 (as in C);  128 (second half, scale 1): 0.25 * -32 = -8
  assert.deepEqual([x[0], x[32], x[64], x[96], x[1], x[16], x[128]], [10.5, -9, -7, -6.25, -16, -0, -8]);
});

test('a byte count that does not match the element count is refused', () => {
  assert.throws(() => dequantise(ggmlType('Q8_0'), new Uint8Array(33), 32), /33 bytes do not hold 32 Q8_0 elements/);
});

test('Q5_0: a fifth bit per element from 4 bytes of qh, x = d * (q - 16)', () => {
  const block = new Uint8Array(22);
  block.set(F16_TWO, 0);
  block[2] = 0x01; // qh bit 0: element 0's fifth bit
  block[4] = 0x01; // qh bit 16: element 16's fifth bit
  block[6] = 0x3a; // element 0: (10 | 16) - 16 = 10 -> 20; element 16: (3 | 16) - 16 = 3 -> 6
  const x = dequantise(ggmlType('Q5_0'), block, 32);
  assert.deepEqual([x[0], x[16], x[1], x[17]], [20, 6, -32, -32]); // 1 and 17: (0 - 16) * 2
});

test('Q5_K: Q4_K plus fifth bits, bit 2p / 2p+1 of qh[l] for sub-block pair p', () => {
  const block = new Uint8Array(176);
  block.set(F16_ONE, 0);
  block.set(F16_HALF, 2);
  const scales = 4, qh = 16, qs = 48;
  block[scales + 0] = 3 | (1 << 6);
  block[scales + 1] = 4;
  block[scales + 4] = 2 | (2 << 6);
  block[scales + 5] = 1;
  block[scales + 8] = 0x25; // sub-block 4: scale 21, min 34 (as in the Q4_K case)
  block[qs + 0] = 0x7a;
  block[qh + 0] = 0x03; // bit 0: element 0 gets +16; bit 1: element 32 gets +16
  block[qh + 1] = 0x10; // bit 4: element 129 (sub-block 4, l = 1) gets +16
  block[qs + 64] = 0x03;
  const x = dequantise(ggmlType('Q5_K'), block, 256);
  // 0: 3 * 26 - 0.5 * 2 = 77;  32: 4 * 23 - 0.5 = 91.5;  128: 21 * 3 - 17 = 46;  129: 21 * 16 - 17 = 319;  1: -1
  assert.deepEqual([x[0], x[32], x[128], x[129], x[1]], [77, 91.5, 46, 319, -1]);
});
