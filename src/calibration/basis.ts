// An ordered set of candidate directions for one channel group of one branch (keys or values of a layer): the
// first r rows are the rank-r basis. Every initialisation (closed form, SVD, ASVD) produces one.

export interface OrderedDirections {
  /** Channels per direction (D, or D/groups). */
  readonly size: number;
  /** Row-major [size, size]: row j is the j-th unit direction, best first. */
  readonly rows: Float64Array;
  /** Variance of the calibration outputs along each direction, uᵀ C u; the first r sum to the variance a rank-r basis keeps. */
  readonly captured: Float64Array;
}

/** Flips each direction so its largest-magnitude entry is positive (as test/tools/reference.py does): reproducible files. */
export function orientRows(rows: Float64Array, size: number): void {
  for (let j = 0; j < size; j++) {
    const row = rows.subarray(j * size, (j + 1) * size);
    let largest = 0;
    for (let i = 1; i < size; i++) if (Math.abs(row[i]!) > Math.abs(row[largest]!)) largest = i;
    if (row[largest]! < 0) for (let i = 0; i < size; i++) row[i] = -row[i]!;
  }
}

/** uᵀ C u for every row u of `rows`; C is a symmetric row-major [size, size] covariance. */
export function capturedVariance(rows: Float64Array, size: number, covariance: Float64Array): Float64Array {
  const out = new Float64Array(size);
  const cu = new Float64Array(size);
  for (let j = 0; j < size; j++) {
    const u = rows.subarray(j * size, (j + 1) * size);
    cu.fill(0);
    for (let i = 0; i < size; i++) {
      const ui = u[i]!;
      if (ui === 0) continue;
      const row = i * size;
      for (let k = 0; k < size; k++) cu[k]! += ui * covariance[row + k]!;
    }
    let sum = 0;
    for (let k = 0; k < size; k++) sum += cu[k]! * u[k]!;
    out[j] = sum;
  }
  return out;
}

/** Trace of a row-major [size, size] matrix: the total variance a covariance holds. */
export function trace(m: Float64Array, size: number): number {
  let t = 0;
  for (let i = 0; i < size; i++) t += m[i * size + i]!;
  return t;
}
