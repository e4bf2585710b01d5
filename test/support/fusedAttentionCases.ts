// Inputs of the fused decode and prefill attention (native/src/kernels/fusedAttention.cuh, fusedPrefillAttention.cuh)
// built the way the engine holds its cache: the compressed branch's features quantised by the runtime's own
// quantiser (or fp16 at 16 bits) and laid into pages by blocksToPages with the native page layout. Shared by the CPU
// checks of the C++ references (test/native/fused*AttentionReference.test.ts) and the GPU checks of the kernels
// (test/gpu/engineKernels.test.ts).
import { blocksToPages } from '../../src/runtime/backends/cudaEngine';
import type { FusedAttentionKernelArgs, NativeAddon } from '../../src/runtime/backends/nativeAddon';
import type { CompressedBlock } from '../../src/runtime/cache/biBranchCache';
import { dequantiseKeys, dequantiseValues, quantiseKeys, quantiseValues } from '../../src/runtime/cache/quantizer';
import { floatToHalfBits, halfBitsToFloat } from '../../src/runtime/half';
import { roundToBf16 } from './gpuKernels';

export interface FusedAttentionCase {
  name: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Position of the first query. */
  start: number;
  queries: number;
  /** Compressed positions (whole blocks of window); 0: CSKV off. */
  compressed: number;
  window: number;
  bits: 16 | 8 | 4 | 2;
  kRank: number;
  vRank: number;
  ringRows: number;
  /** Sliding window; 0 (the default): none. */
  sliding?: number;
  /** The GPU size the split plan is made for (args.multiprocessors); default 132, an H100's or H200's. */
  multiprocessors?: number;
}

export interface BuiltCase {
  args: FusedAttentionKernelArgs;
  /** The compressed branch's keys and values rebuilt by the runtime's dequantiser, in float64 (before the mean). */
  kRebuilt: Float64Array;
  vRebuilt: Float64Array;
}

/** Seeded inputs for `c`; `normals(count, scale)` gives fresh normal samples. */
export function buildFusedCase(addon: NativeAddon, c: FusedAttentionCase, normals: (count: number, scale?: number) => Float32Array): BuiltCase {
  const D = c.kvHeads * c.headDim, Q = c.heads * c.headDim;
  const invFreq = Float64Array.from({ length: c.headDim / 2 }, (_, i) => 10000 ** (-(2 * i) / c.headDim));
  const args: FusedAttentionKernelArgs = {
    q: normals(c.queries * Q), kRing: normals(c.ringRows * D), vRing: normals(c.ringRows * D), ringRows: c.ringRows,
    compressedTokens: c.compressed, invFreq, attentionFactor: 1.1, start: c.start, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim,
    slidingWindow: c.sliding ?? 0, multiprocessors: c.multiprocessors ?? 132,
  };
  const kRebuilt = new Float64Array(c.compressed * D), vRebuilt = new Float64Array(c.compressed * D);
  if (c.compressed === 0) return { args, kRebuilt, vRebuilt };
  const W = c.window, blocks: CompressedBlock[] = [];
  const kFeatures = new Float32Array(c.compressed * c.kRank), vFeatures = new Float32Array(c.compressed * c.vRank);
  for (let b = 0; b < c.compressed / W; b++) {
    const k = normals(W * c.kRank, 2), v = normals(W * c.vRank, 2);
    if (c.bits === 16) {
      const kh = Uint16Array.from(k, floatToHalfBits), vh = Uint16Array.from(v, floatToHalfBits);
      blocks.push({ k: kh, v: vh });
      kFeatures.set(Array.from(kh, halfBitsToFloat), b * W * c.kRank);
      vFeatures.set(Array.from(vh, halfBitsToFloat), b * W * c.vRank);
    } else {
      const kq = quantiseKeys(k, W, c.kRank, c.bits), vq = quantiseValues(v, W, c.vRank, c.bits);
      blocks.push({ k: kq, v: vq });
      dequantiseKeys(kq, W, c.kRank, c.bits, kFeatures, b * W * c.kRank);
      dequantiseValues(vq, W, c.vRank, c.bits, vFeatures, b * W * c.vRank);
    }
  }
  const layout = addon.cacheLayout({
    layers: 1, kvDim: D, window: W, bits: c.bits, kRanks: [c.kRank], vRanks: [c.vRank], capacityTokens: c.compressed + c.ringRows, chunkTokens: W,
  });
  const kBasis = normals(D * c.kRank, 1 / Math.sqrt(c.kRank)), vBasis = normals(D * c.vRank, 1 / Math.sqrt(c.vRank));
  Object.assign(args, {
    window: W, bits: c.bits, kRank: c.kRank, vRank: c.vRank, kBasis, vBasis, kMean: normals(D, 0.5), vMean: normals(D, 0.5),
    pages: blocksToPages(blocks, layout, 0, { layers: 1, kvDim: D, window: W, bits: c.bits, ranks: { k: [c.kRank], v: [c.vRank] } }),
  });
  const rebuild = (features: Float32Array, basis: Float32Array, rank: number, out: Float64Array): void => {
    for (let p = 0; p < c.compressed; p++) {
      for (let ch = 0; ch < D; ch++) {
        let sum = 0;
        for (let j = 0; j < rank; j++) sum += features[p * rank + j]! * basis[ch * rank + j]!;
        out[p * D + ch] = sum;
      }
    }
  };
  rebuild(kFeatures, kBasis, c.kRank, kRebuilt);
  rebuild(vFeatures, vBasis, c.vRank, vRebuilt);
  return { args, kRebuilt, vRebuilt };
}

/** `args` as the device stores them, for a reference to compare a kernel against: bf16 rings (the pages are exact). */
export function asStoredOnDevice(args: FusedAttentionKernelArgs): FusedAttentionKernelArgs {
  return { ...args, kRing: Float32Array.from(args.kRing, roundToBf16), vRing: Float32Array.from(args.vRing, roundToBf16) };
}

/** max |a - b| / max |b|, and whether a holds a NaN. */
export function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): { error: number; nan: boolean } {
  let worst = 0, scale = 0, nan = false;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(got[i])) nan = true;
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return { error: worst / scale, nan };
}
