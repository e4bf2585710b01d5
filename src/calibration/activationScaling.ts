// ASVD's input scaling, S_jj = (E|x_j|)^alpha over the layer's normed inputs x, estimated from what calibration
// can see. The Engine hands calibration the keys and values only (k = W x + b), not x, so:
//  - x is replaced by its minimum-norm pre-image x^ = W⁺(k - b) = Wᵀ(W Wᵀ)⁻¹(k - b). That is exactly x when W is
//    square and invertible (multi-head models such as Llama-2-7B and LongChat, the paper's own), and otherwise
//    the part of x in W's row space (GQA: H > D), the only part that reaches the keys at all. The rest of x does
//    enter real ASVD's scale, and that is where this variant differs from it.
//  - E|x_j| is replaced by the root mean square sqrt(E[x^_j²]): a linear pre-image carries second moments, which
//    the statistics hold, but not absolute ones. The two agree up to one constant factor for Gaussian-like
//    channels, and a constant factor does not change the singular directions.
// With k's second moment about the bias M = C + (mu - b)(mu - b)ᵀ, E[x^ x^ᵀ] = Wᵀ N W with N = G⁻¹ M G⁻¹ and
// G = W Wᵀ, so the scale costs one D × D × H product per branch, no pass over activations.

export const ASVD_ALPHA = 0.5;

/** S² for `weight` (row-major [channels, inputs]) from the covariance ([channels, channels]) and mean of its outputs. */
export function preimageInputScaleSquared(
  weight: Float32Array, channels: number, inputs: number, bias: Float32Array | undefined, covariance: Float64Array, mean: Float64Array, alpha = ASVD_ALPHA,
): Float64Array {
  const D = channels, H = inputs;
  const moment = Float64Array.from(covariance);
  for (let i = 0; i < D; i++) {
    const di = mean[i]! - (bias?.[i] ?? 0);
    for (let j = 0; j < D; j++) moment[i * D + j]! += di * (mean[j]! - (bias?.[j] ?? 0));
  }
  const gram = new Float64Array(D * D);
  for (let i = 0; i < D; i++) {
    for (let j = i; j < D; j++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += weight[i * H + h]! * weight[j * H + h]!;
      gram[i * D + j] = s;
      gram[j * D + i] = s;
    }
  }
  // A whisper of ridge keeps the Cholesky factor defined when W has dependent rows (D > H, or a degenerate head).
  let diagonal = 0;
  for (let i = 0; i < D; i++) diagonal += gram[i * D + i]!;
  const ridge = 1e-10 * (diagonal / D || 1);
  for (let i = 0; i < D; i++) gram[i * D + i]! += ridge;
  const factor = cholesky(gram, D);
  const a = solveInPlace(factor, D, moment, D); // G⁻¹ M
  const n = solveInPlace(factor, D, transpose(a, D), D); // G⁻¹ (G⁻¹ M)ᵀ = G⁻¹ M G⁻¹
  const nw = new Float64Array(D * H);
  for (let i = 0; i < D; i++) {
    for (let k = 0; k < D; k++) {
      const nik = n[i * D + k]!;
      if (nik === 0) continue;
      for (let h = 0; h < H; h++) nw[i * H + h]! += nik * weight[k * H + h]!;
    }
  }
  const energy = new Float64Array(H);
  for (let i = 0; i < D; i++) for (let h = 0; h < H; h++) energy[h]! += weight[i * H + h]! * nw[i * H + h]!;
  // S² = (rms)^(2·alpha) = E[x^²]^alpha.
  return energy.map((e) => Math.max(e, 0) ** alpha);
}

/** Lower-triangular L with L Lᵀ = a (symmetric positive definite, row-major [n, n]). */
function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        if (!(s > 0)) throw new Error('W Wᵀ is not positive definite');
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j]!;
      }
    }
  }
  return l;
}

/** Solves (L Lᵀ) X = B for row-major B [n, m], overwriting and returning B. */
function solveInPlace(l: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  for (let i = 0; i < n; i++) {
    const row = i * m;
    for (let k = 0; k < i; k++) {
      const lik = l[i * n + k]!;
      if (lik === 0) continue;
      for (let c = 0; c < m; c++) b[row + c]! -= lik * b[k * m + c]!;
    }
    const d = l[i * n + i]!;
    for (let c = 0; c < m; c++) b[row + c]! /= d;
  }
  for (let i = n - 1; i >= 0; i--) {
    const row = i * m;
    for (let k = i + 1; k < n; k++) {
      const lki = l[k * n + i]!;
      if (lki === 0) continue;
      for (let c = 0; c < m; c++) b[row + c]! -= lki * b[k * m + c]!;
    }
    const d = l[i * n + i]!;
    for (let c = 0; c < m; c++) b[row + c]! /= d;
  }
  return b;
}

function transpose(a: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[j * n + i] = a[i * n + j]!;
  return out;
}
