// Blockwise symmetric quantisation of a linear layer's weight [N, K] (as stored: out × in) into the layout of
// onnxruntime's com.microsoft MatMulNBits: for each output row, blocks of `blockSize` input channels, each with
// one f32 scale; codes are unsigned with the operator's implicit zero point 2^(bits-1), so no zero-point tensor is
// needed. 4-bit codes pack two to a byte, the even channel in the low nibble.
// ggml's Q8_0 (blocks of 32: an f16 scale, 32 int8) is that 8-bit layout up to a change of representation, so a
// Q8_0 GGUF tensor converts to it exactly (blockwiseFromQ8_0): no dequantise/requantise round trip.
import { halfBitsToFloat } from '../half';

export interface BlockQuantised {
  bits: 8 | 4;
  blockSize: number;
  /** Output features (rows of the stored weight). */
  n: number;
  /** Input features. */
  k: number;
  blocksPerRow: number;
  /** [n, blocksPerRow, blockSize * bits / 8] */
  codes: Uint8Array;
  /** [n * blocksPerRow] */
  scales: Float32Array;
}

/** Row `i` of a weight [n, k] as f32, for weights quantised straight from the checkpoint's bytes. */
export type RowReader = (row: number) => Float32Array;

export function quantiseBlockwise(weight: Float32Array | RowReader, n: number, k: number, bits: 8 | 4, blockSize = 32): BlockQuantised {
  if (typeof weight !== 'function' && weight.length !== n * k) throw new RangeError(`weight has ${weight.length} values, expected ${n} × ${k}`);
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new RangeError(`block size must be a power of two >= 16, got ${blockSize}`);
  const blocksPerRow = Math.ceil(k / blockSize);
  const blobBytes = (blockSize * bits) / 8;
  const codes = new Uint8Array(n * blocksPerRow * blobBytes);
  const scales = new Float32Array(n * blocksPerRow);
  const zero = 1 << (bits - 1);
  const maxCode = zero - 1; // symmetric: codes zero ± maxCode, so +max and -max are both exact
  for (let row = 0; row < n; row++) {
    const w = typeof weight === 'function' ? weight(row) : weight.subarray(row * k, (row + 1) * k);
    for (let b = 0; b < blocksPerRow; b++) {
      const from = b * blockSize, to = Math.min(k, from + blockSize);
      let maxAbs = 0;
      for (let c = from; c < to; c++) maxAbs = Math.max(maxAbs, Math.abs(w[c]!));
      const scale = maxAbs / maxCode;
      const inverse = scale === 0 ? 0 : 1 / scale;
      const block = row * blocksPerRow + b;
      scales[block] = scale;
      const blob = block * blobBytes;
      // Channels past k (a partial last block) keep the zero code, i.e. weight 0.
      for (let c = 0; c < blockSize; c++) {
        const q = from + c < to ? zero + Math.max(-maxCode, Math.min(maxCode, Math.round(w[from + c]! * inverse))) : zero;
        if (bits === 8) codes[blob + c] = q;
        else codes[blob + (c >> 1)] = codes[blob + (c >> 1)]! | ((c & 1) === 0 ? q : q << 4);
      }
    }
  }
  return { bits, blockSize, n, k, blocksPerRow, codes, scales };
}

/** The f32 weight [n, k] the codes stand for (tests and error measurement). */
export function dequantiseBlockwise(q: BlockQuantised): Float32Array {
  const out = new Float32Array(q.n * q.k);
  const blobBytes = (q.blockSize * q.bits) / 8;
  const zero = 1 << (q.bits - 1);
  for (let row = 0; row < q.n; row++) {
    for (let col = 0; col < q.k; col++) {
      const b = Math.floor(col / q.blockSize), c = col % q.blockSize;
      const block = row * q.blocksPerRow + b;
      const byte = q.codes[block * blobBytes + (q.bits === 8 ? c : c >> 1)]!;
      const code = q.bits === 8 ? byte : (c & 1) === 0 ? byte & 15 : byte >> 4;
      out[row * q.k + col] = (code - zero) * q.scales[block]!;
    }
  }
  return out;
}

/** ggml Q8_0 bytes of a weight [n, k] (k a multiple of 32, as GGUF requires) as MatMulNBits 8-bit blocks: code = q + 128 (the operator's implicit zero point), scale = the block's f16 d. Exact. */
export function blockwiseFromQ8_0(raw: Uint8Array, n: number, k: number): BlockQuantised {
  const blockSize = 32;
  if (k % blockSize !== 0) throw new RangeError(`Q8_0 rows hold whole blocks of 32, got a row of ${k}`);
  const blocksPerRow = k / blockSize;
  const blocks = n * blocksPerRow;
  if (raw.byteLength !== blocks * 34) throw new RangeError(`Q8_0 weight [${n}, ${k}] has ${blocks * 34} bytes, got ${raw.byteLength}`);
  const codes = new Uint8Array(blocks * blockSize);
  const scales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const at = b * 34;
    scales[b] = halfBitsToFloat(raw[at]! | (raw[at + 1]! << 8));
    for (let j = 0; j < blockSize; j++) codes[b * blockSize + j] = raw[at + 2 + j]! ^ 0x80; // int8 two's complement + 128
  }
  return { bits: 8, blockSize, n, k, blocksPerRow, codes, scales };
}
