// Weights and CSKV bases must be finite numbers: one NaN or infinity in a matrix spreads through every later
// activation, and the model then answers with one repeated token instead of failing. Checked as they are read.
import { ModelFormatError } from '../errors';

/** Index of the first NaN or ±Infinity in `values`, or -1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}

/** The same over raw little-endian F32/F16/BF16 bytes: an all-ones exponent is NaN or infinity in each format. */
export function firstNonFiniteBytes(bytes: Uint8Array, dtype: string): number {
  if (dtype === 'F32') {
    for (let i = 0; i + 3 < bytes.length; i += 4) if ((bytes[i + 3]! & 0x7f) === 0x7f && (bytes[i + 2]! & 0x80) !== 0) return i / 4;
    return -1;
  }
  // F16: exponent bits 0x7c00 of the 16-bit word; BF16: 0x7f80 (the top half of an f32).
  const [highMask, lowMask] = dtype === 'F16' ? [0x7c, 0x00] : dtype === 'BF16' ? [0x7f, 0x80] : [0, 0];
  if (highMask === 0) return -1;
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    if ((bytes[i + 1]! & highMask) === highMask && (bytes[i]! & lowMask) === lowMask) return i / 2;
  }
  return -1;
}

/** Throws, naming the file and the tensor, when `index` (from the functions above) found a value. */
export function requireFinite(index: number, file: string, tensor: string): void {
  if (index >= 0) throw new ModelFormatError(file, `tensor "${tensor}" holds NaN or an infinite value (element ${index}); the file is damaged`);
}
