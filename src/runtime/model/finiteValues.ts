// Weights and CSKV bases must be finite numbers: one NaN or infinity in a matrix spreads through every later
// activation, and the model then answers with one repeated token instead of failing. Checked as they are read.
import { ModelFormatError } from '../errors';

/** Index of the first NaN or ±Infinity in `values`, or -1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}

/**
 * The same over raw little-endian F32/F16/BF16 bytes: an all-ones exponent is NaN or infinity in each format.
 * Read as whole words where the bytes are aligned for it (about four times faster than byte by byte).
 */
export function firstNonFiniteBytes(bytes: Uint8Array, dtype: string): number {
  const exponent = dtype === 'F32' ? 0x7f800000 : dtype === 'F16' ? 0x7c00 : dtype === 'BF16' ? 0x7f80 : 0;
  if (exponent === 0) return -1;
  const size = dtype === 'F32' ? 4 : 2;
  const count = Math.floor(bytes.byteLength / size);
  if (bytes.byteOffset % size === 0) {
    const words = size === 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset, count) : new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    for (let i = 0; i < count; i++) if ((words[i]! & exponent) === exponent) return i;
    return -1;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) {
    const word = size === 4 ? view.getUint32(i * 4, true) : view.getUint16(i * 2, true);
    if ((word & exponent) === exponent) return i;
  }
  return -1;
}

/** Throws, naming the file and the tensor, when `index` (from the functions above) found a value. */
export function requireFinite(index: number, file: string, tensor: string): void {
  if (index >= 0) throw new ModelFormatError(file, `tensor "${tensor}" holds NaN or an infinite value (element ${index}); the file is damaged`);
}
