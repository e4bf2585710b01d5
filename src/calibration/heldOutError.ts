// How well one branch's factors reconstruct keys or values they were not fitted on: ||X - X^||² / ||X - mean||²
// over held-out tokens (the mean being the held-out tokens' own, so 1 means "no better than a constant").
// Two reconstructions are scored: the exact projection mu + (x - mu) U Uᵀ, and the one the cache actually
// serves, with the features stored as the bi-branch cache stores them (fp16 at 16 bits, else the KIVI-style
// quantiser over blocks of W tokens), which is where a rotation of the basis can matter.
import { floatToHalfBits, halfBitsToFloat } from '../runtime/half';
import type { CompressedBits } from '../protocol';
import { dequantiseKeys, dequantiseValues, quantiseKeys, quantiseValues } from '../runtime/cache/quantizer';
import type { BranchFactors } from '../runtime/cskvFile';

export interface ReconstructionScore {
  tokens: number;
  /** Exact projection onto the basis. */
  relativeError: number;
  /** With the features stored at the cache's bits. */
  storedRelativeError: number;
}

export class HeldOutError {
  private tokens = 0;
  private error = 0;
  private storedError = 0;
  private readonly centredSum: Float64Array;
  private centredSquares = 0;
  private readonly features: number;
  private readonly pendingRows: Float32Array;
  private readonly pendingFeatures: Float32Array;
  private pending = 0;
  private readonly centred: Float64Array;
  private readonly stored: Float32Array;
  private readonly accumulator: Float64Array;

  constructor(
    private readonly factors: BranchFactors,
    private readonly channels: number,
    private readonly kind: 'k' | 'v',
    private readonly bits: CompressedBits,
    private readonly window: number,
  ) {
    this.features = factors.groups * factors.rank;
    this.centredSum = new Float64Array(channels);
    this.pendingRows = new Float32Array(window * channels);
    this.pendingFeatures = new Float32Array(window * this.features);
    this.centred = new Float64Array(channels);
    this.stored = new Float32Array(window * this.features);
    this.accumulator = new Float64Array(factors.rank);
  }

  /** Scores `tokens` rows of a row-major [tokens, D] array; blocks of W consecutive tokens are stored together. */
  add(rows: Float32Array, tokens: number): void {
    const D = this.channels;
    for (let t = 0; t < tokens; t++) {
      const x = rows.subarray(t * D, (t + 1) * D);
      const d = this.centred;
      for (let c = 0; c < D; c++) {
        d[c] = x[c]! - this.factors.mean[c]!;
        this.centredSum[c]! += d[c]!;
        this.centredSquares += d[c]! * d[c]!;
      }
      const features = this.pendingFeatures.subarray(this.pending * this.features, (this.pending + 1) * this.features);
      this.project(d, features);
      this.error += this.residual(x, features);
      this.pendingRows.set(x, this.pending * D);
      this.tokens++;
      if (++this.pending === this.window) this.storeBlock();
    }
  }

  /** The end of a calibration segment: a last partial block is stored as it is. */
  endSegment(): void {
    if (this.pending > 0) this.storeBlock();
  }

  score(): ReconstructionScore {
    this.endSegment();
    let spread = this.centredSquares;
    for (const s of this.centredSum) spread -= (s * s) / Math.max(this.tokens, 1);
    const relative = (e: number): number => (this.tokens === 0 ? NaN : spread > 0 ? e / spread : e === 0 ? 0 : Infinity);
    return { tokens: this.tokens, relativeError: relative(this.error), storedRelativeError: relative(this.storedError) };
  }

  /** features = (x - mu) U, group by group. */
  private project(centred: Float64Array, out: Float32Array): void {
    const { groups, rank, basis } = this.factors;
    const size = this.channels / groups;
    const acc = this.accumulator;
    for (let g = 0; g < groups; g++) {
      acc.fill(0);
      for (let i = 0; i < size; i++) {
        const di = centred[g * size + i]!;
        const row = (g * size + i) * rank;
        for (let j = 0; j < rank; j++) acc[j]! += di * basis[row + j]!;
      }
      out.set(acc, g * rank);
    }
  }

  /** ||x - (mu + features Uᵀ)||². */
  private residual(x: Float32Array, features: Float32Array): number {
    const { groups, rank, basis, mean } = this.factors;
    const size = this.channels / groups;
    let sum = 0;
    for (let g = 0; g < groups; g++) {
      for (let i = 0; i < size; i++) {
        const c = g * size + i;
        const row = c * rank;
        let y = mean[c]!;
        for (let j = 0; j < rank; j++) y += basis[row + j]! * features[g * rank + j]!;
        sum += (x[c]! - y) ** 2;
      }
    }
    return sum;
  }

  private storeBlock(): void {
    const n = this.pending, F = this.features, D = this.channels;
    const features = this.pendingFeatures.subarray(0, n * F);
    if (this.bits === 16) {
      for (let i = 0; i < n * F; i++) this.stored[i] = halfBitsToFloat(floatToHalfBits(features[i]!));
    } else if (this.kind === 'k') {
      dequantiseKeys(quantiseKeys(features, n, F, this.bits), n, F, this.bits, this.stored, 0);
    } else {
      dequantiseValues(quantiseValues(features, n, F, this.bits), n, F, this.bits, this.stored, 0);
    }
    for (let t = 0; t < n; t++) {
      this.storedError += this.residual(this.pendingRows.subarray(t * D, (t + 1) * D), this.stored.subarray(t * F, (t + 1) * F));
    }
    this.pending = 0;
  }
}
