// Dequantisers for the ggml tensor types the runtime loads: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K
// (what Q8_0, Q4_K_M and Q5_K_M files hold; Q5_0 is llama.cpp's fallback for Q4_K rows not a multiple of 256), following
// the block layouts and the arithmetic of ggml's dequantize_row_* (ggml-quants.c). Products are formed exactly in
// float64 and rounded once into the Float32Array, which equals ggml's float32 arithmetic: every intermediate
// product there (an f16 scale times a small integer) is exact in float32, so only the last operation rounds.
import { halfBitsToFloat } from '../half';
import type { GgmlTypeInfo } from './ggmlTypes';

type Dequantiser = (src: Uint8Array, out: Float32Array) => void;

const f16 = (b: Uint8Array, o: number): number => halfBitsToFloat(b[o]! | (b[o + 1]! << 8));

function dequantF32(src: Uint8Array, out: Float32Array): void {
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(src);
}

function dequantF16(src: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = f16(src, 2 * i);
}

function dequantBF16(src: Uint8Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < out.length; i++) bits[i] = ((src[2 * i]! | (src[2 * i + 1]! << 8)) << 16) >>> 0;
}

/** Q8_0: blocks of 32 = f16 scale d, then 32 int8 q; x = d * q. */
function dequantQ8_0(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 34, o += 32) {
    const d = f16(src, b);
    for (let j = 0; j < 32; j++) out[o + j] = d * ((src[b + 2 + j]! << 24) >> 24);
  }
}

/** Q4_0: blocks of 32 = f16 scale d, then 16 bytes; low nibbles are elements 0..15, high nibbles 16..31; x = d * (q - 8). */
function dequantQ4_0(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 18, o += 32) {
    const d = f16(src, b);
    for (let j = 0; j < 16; j++) {
      const q = src[b + 2 + j]!;
      out[o + j] = d * ((q & 0x0f) - 8);
      out[o + j + 16] = d * ((q >> 4) - 8);
    }
  }
}

/**
 * Q5_0: blocks of 32 = f16 scale d, 4 bytes of fifth bits (bit j for element j), 16 bytes of nibbles laid out as
 * in Q4_0; x = d * (q - 16).
 */
function dequantQ5_0(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 22, o += 32) {
    const d = f16(src, b);
    const qh = (src[b + 2]! | (src[b + 3]! << 8) | (src[b + 4]! << 16) | (src[b + 5]! << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = src[b + 6 + j]!;
      out[o + j] = d * (((q & 0x0f) | (((qh >>> j) & 1) << 4)) - 16);
      out[o + j + 16] = d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
    }
  }
}

/**
 * Q4_K: super-blocks of 256 = f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs for 8 sub-blocks of 32,
 * then 128 bytes of nibbles. Each 32-byte run of nibbles holds two sub-blocks (low nibbles, then high nibbles);
 * x = d * scale * q - dmin * min.
 */
function dequantQ4_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 144, o += 256) {
    const d = f16(src, b);
    const dmin = f16(src, b + 2);
    const scales = b + 4;
    const qs = b + 16;
    for (let sub = 0; sub < 8; sub += 2) {
      const [sc1, m1] = scaleMinK4(src, scales, sub);
      const [sc2, m2] = scaleMinK4(src, scales, sub + 1);
      const d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2;
      const q = qs + sub * 16; // 32 bytes per pair of sub-blocks
      const y = o + sub * 32;
      for (let l = 0; l < 32; l++) {
        out[y + l] = d1 * (src[q + l]! & 0x0f) - min1;
        out[y + 32 + l] = d2 * (src[q + l]! >> 4) - min2;
      }
    }
  }
}

/**
 * Q5_K: Q4_K's layout (d, dmin, 12 bytes of scales and mins) plus 32 bytes of fifth bits before the 128 bytes of
 * nibbles; sub-block pair p takes its fifth bits from bits 2p (low nibbles) and 2p+1 (high nibbles) of qh[l].
 */
function dequantQ5_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 176, o += 256) {
    const d = f16(src, b);
    const dmin = f16(src, b + 2);
    const scales = b + 4;
    const qh = b + 16;
    const qs = b + 48;
    for (let sub = 0; sub < 8; sub += 2) {
      const [sc1, m1] = scaleMinK4(src, scales, sub);
      const [sc2, m2] = scaleMinK4(src, scales, sub + 1);
      const d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2;
      const q = qs + sub * 16;
      const y = o + sub * 32;
      for (let l = 0; l < 32; l++) {
        const h = src[qh + l]!;
        out[y + l] = d1 * ((src[q + l]! & 0x0f) + ((h >> sub) & 1) * 16) - min1;
        out[y + 32 + l] = d2 * ((src[q + l]! >> 4) + ((h >> (sub + 1)) & 1) * 16) - min2;
      }
    }
  }
}

/** ggml's get_scale_min_k4: sub-blocks 0-3 keep 6 bits in bytes 0-7, 4-7 split across bytes 8-11 and the top bits. */
function scaleMinK4(src: Uint8Array, at: number, j: number): [number, number] {
  const q = (i: number): number => src[at + i]!;
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 0x0f) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
}

/**
 * Q6_K: super-blocks of 256 = 128 bytes of low nibbles (ql), 64 bytes of high 2-bit pairs (qh), 16 int8 scales
 * (one per 16 elements), f16 d; x = d * scale * (q - 32), q the 6-bit value. Laid out in two halves of 128.
 */
function dequantQ6_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 210, o += 256) {
    const d = f16(src, b + 208);
    for (let half = 0; half < 2; half++) {
      const ql = b + half * 64;
      const qh = b + 128 + half * 32;
      const sc = b + 192 + half * 8;
      const y = o + half * 128;
      const scale = (i: number): number => (src[sc + i]! << 24) >> 24;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l]!;
        const q1 = ((src[ql + l]! & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32]! & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = d * scale(is) * q1;
        out[y + l + 32] = d * scale(is + 2) * q2;
        out[y + l + 64] = d * scale(is + 4) * q3;
        out[y + l + 96] = d * scale(is + 6) * q4;
      }
    }
  }
}

const DEQUANTISERS: ReadonlyMap<string, Dequantiser> = new Map([
  ['F32', dequantF32], ['F16', dequantF16], ['BF16', dequantBF16],
  ['Q8_0', dequantQ8_0], ['Q4_0', dequantQ4_0], ['Q5_0', dequantQ5_0], ['Q4_K', dequantQ4_K], ['Q5_K', dequantQ5_K],
  ['Q6_K', dequantQ6_K],
]);

export const LOADABLE_GGML_TYPES: readonly string[] = [...DEQUANTISERS.keys()];

export function canDequantise(type: GgmlTypeInfo): boolean {
  return DEQUANTISERS.has(type.name);
}

/** The float32 values of `count` elements stored as `type` in `src` (whole blocks). */
export function dequantise(type: GgmlTypeInfo, src: Uint8Array, count: number): Float32Array {
  const fn = DEQUANTISERS.get(type.name);
  if (!fn) throw new Error(`no dequantiser for ggml type ${type.name}`);
  if (src.byteLength !== (count / type.blockSize) * type.bytesPerBlock) {
    throw new Error(`${src.byteLength} bytes do not hold ${count} ${type.name} elements`);
  }
  const out = new Float32Array(count);
  fn(src, out);
  return out;
}
