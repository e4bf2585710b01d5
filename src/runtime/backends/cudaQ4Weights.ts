// The CUDA engine's 4-bit weights (`--weights q4`): their device layout (native/src/kernels/q4Layout.h, which says
// why this one) and the conversions into it: the CPU engine's 4-bit blocks (blockQuantizer.ts, the one quantiser
// for weights quantised at load), and GGUF Q4_0 and Q4_K blocks taken as stored (no second 4-bit rounding).
// Per block of 32 input channels: 16 bytes of codes (channel 2i low nibble of byte i) and f16 (scale, min),
// W = code · scale − min.
import { floatToHalfBits, halfBitsToFloat } from '../half';
import type { ModelWeights } from '../model/weights';
import { type BlockQuantised, quantiseBlockwise } from '../onnx/blockQuantizer';
import type { DeviceModelShape } from './cudaMemoryPlan';
import { deviceBlockWeightBytes, linearValues } from './cudaWeightFormat';
import type { Q4WeightArrays } from './nativeAddon';

export const Q4_BLOCK = 32;

/** Device bytes of a q4 weight [n, k]: 16 bytes of codes and two f16 a block of 32 (rows padded to whole blocks). */
export function q4Bytes(n: number, k: number): number {
  return n * Math.ceil(k / Q4_BLOCK) * (Q4_BLOCK / 2 + 4);
}

/** Device bytes of the weights with --weights q4 (cudaWeightFormat.ts). */
export function deviceQ4WeightBytes(s: DeviceModelShape): number {
  return deviceBlockWeightBytes(s, q4Bytes, false);
}

function emptyQ4(n: number, k: number): Q4WeightArrays {
  const blocks = n * Math.ceil(k / Q4_BLOCK);
  return { codes: new Uint8Array(blocks * (Q4_BLOCK / 2)), scaleMin: new Uint16Array(blocks * 2), n, k };
}

/** f16 bits of an f32 (scale, min) product, refusing what f16 cannot hold (a weight of 65504 or more). */
function half(value: number, what: string): number {
  const bits = floatToHalfBits(value);
  if ((bits & 0x7c00) === 0x7c00) throw new RangeError(`${what} ${value} does not fit an f16 (q4 weights hold f16 scales)`);
  return bits;
}

/**
 * The CPU engine's 4-bit blocks (symmetric, implicit zero point 8) in the device layout: the same code bytes,
 * scale rounded to f16 and min = 8 · that scale (exact), so W = (code − 8) · scale as on the CPU up to the f16
 * rounding of the scale.
 */
export function deviceQ4(blocks: BlockQuantised): Q4WeightArrays {
  if (blocks.bits !== 4 || blocks.blockSize !== Q4_BLOCK) throw new RangeError(`the CUDA engine takes 4-bit blocks of ${Q4_BLOCK}, got ${blocks.bits}-bit blocks of ${blocks.blockSize}`);
  const out = emptyQ4(blocks.n, blocks.k);
  out.codes.set(blocks.codes);
  for (let b = 0; b < blocks.scales.length; b++) {
    const scale = half(blocks.scales[b]!, 'scale');
    out.scaleMin[2 * b] = scale;
    out.scaleMin[2 * b + 1] = half(8 * halfBitsToFloat(scale), 'scale');
  }
  return out;
}

/** GGUF Q4_0 [n, k] (blocks of 32: f16 d, 16 bytes; low nibbles are elements 0..15, high 16..31; W = d·(q − 8)): exact. */
export function deviceQ4FromQ4_0(raw: Uint8Array, n: number, k: number): Q4WeightArrays {
  if (k % Q4_BLOCK !== 0) throw new RangeError(`Q4_0 rows hold whole blocks of 32, got a row of ${k}`);
  const blocks = n * (k / Q4_BLOCK);
  if (raw.byteLength !== blocks * 18) throw new RangeError(`Q4_0 weight [${n}, ${k}] has ${blocks * 18} bytes, got ${raw.byteLength}`);
  const out = emptyQ4(n, k);
  for (let b = 0; b < blocks; b++) {
    const at = b * 18, d = raw[at]! | (raw[at + 1]! << 8);
    if ((d & 0x7c00) === 0x7c00) throw new RangeError(`Q4_0 block ${b} has a scale of ${halfBitsToFloat(d)}`);
    out.scaleMin[2 * b] = d;
    out.scaleMin[2 * b + 1] = half(8 * halfBitsToFloat(d), 'Q4_0 scale');
    const code = (c: number): number => (c < 16 ? raw[at + 2 + c]! & 15 : raw[at + 2 + c - 16]! >> 4);
    for (let i = 0; i < 16; i++) out.codes[b * 16 + i] = code(2 * i) | (code(2 * i + 1) << 4);
  }
  return out;
}

/** Q4_K's packed 6-bit (scale, min) of sub-block j (ggml's get_scale_min_k4). */
function scaleMinK4(raw: Uint8Array, at: number, j: number): [number, number] {
  const q = (i: number): number => raw[at + i]!;
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 0x0f) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
}

/**
 * GGUF Q4_K [n, k] (super-blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) for 8 sub-blocks of 32,
 * 128 bytes of nibbles; W = d·sc·q − dmin·m): the codes as stored, each sub-block's d·sc and dmin·m rounded once
 * to f16.
 */
export function deviceQ4FromQ4_K(raw: Uint8Array, n: number, k: number): Q4WeightArrays {
  if (k % 256 !== 0) throw new RangeError(`Q4_K rows hold whole super-blocks of 256, got a row of ${k}`);
  const supers = n * (k / 256);
  if (raw.byteLength !== supers * 144) throw new RangeError(`Q4_K weight [${n}, ${k}] has ${supers * 144} bytes, got ${raw.byteLength}`);
  const out = emptyQ4(n, k);
  for (let s = 0; s < supers; s++) {
    const at = s * 144;
    const d = halfBitsToFloat(raw[at]! | (raw[at + 1]! << 8)), dmin = halfBitsToFloat(raw[at + 2]! | (raw[at + 3]! << 8));
    for (let sub = 0; sub < 8; sub++) {
      const [sc, m] = scaleMinK4(raw, at + 4, sub);
      const block = s * 8 + sub;
      out.scaleMin[2 * block] = half(d * sc, 'Q4_K scale');
      out.scaleMin[2 * block + 1] = half(dmin * m, 'Q4_K min');
      const q = at + 16 + (sub >> 1) * 32, shift = (sub & 1) * 4; // a pair of sub-blocks: low nibbles, then high
      for (let i = 0; i < 16; i++) out.codes[block * 16 + i] = ((raw[q + 2 * i]! >> shift) & 15) | (((raw[q + 2 * i + 1]! >> shift) & 15) << 4);
    }
  }
  return out;
}

/**
 * A linear weight [n, k] of the checkpoint in the device's q4 layout: a GGUF Q4_0 or Q4_K tensor from its own blocks
 * (no second 4-bit rounding), any other quantised here by the CPU engine's quantiser from the whole tensor or, with
 * `rowsPerRead`, row batch by row batch (linearValues).
 */
export function readDeviceQ4(weights: ModelWeights, name: string, n: number, k: number, rowsPerRead?: number): Q4WeightArrays {
  const stored = weights.readStoredBlocks(name, [n, k]);
  if (stored?.type === 'Q4_0') return deviceQ4FromQ4_0(stored.bytes, n, k);
  if (stored?.type === 'Q4_K') return deviceQ4FromQ4_K(stored.bytes, n, k);
  return deviceQ4(quantiseBlockwise(linearValues(weights, name, n, k, rowsPerRead), n, k, 4, Q4_BLOCK));
}

/** The f64 weight [n, k] a device q4 weight stands for (tests and error measurement). */
export function dequantiseDeviceQ4(w: Q4WeightArrays): Float64Array {
  const out = new Float64Array(w.n * w.k);
  const blocksPerRow = Math.ceil(w.k / Q4_BLOCK);
  for (let r = 0; r < w.n; r++) {
    for (let c = 0; c < w.k; c++) {
      const block = r * blocksPerRow + Math.floor(c / Q4_BLOCK);
      const byte = w.codes[block * 16 + ((c % Q4_BLOCK) >> 1)]!;
      const code = (c & 1) === 0 ? byte & 15 : byte >> 4;
      out[r * w.k + c] = code * halfBitsToFloat(w.scaleMin[2 * block]!) - halfBitsToFloat(w.scaleMin[2 * block + 1]!);
    }
  }
  return out;
}
