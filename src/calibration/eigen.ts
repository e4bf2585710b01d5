// Symmetric eigendecomposition in float64: Householder reduction to tridiagonal form, then the implicit QL
// algorithm (EISPACK tred2/tql2, as ported in the public-domain JAMA library).
//
// Written by hand rather than taken from a library: the JS libraries that offer it (ml-matrix and friends) are
// ports of the same JAMA code on arrays of arrays, no faster, and would be a dependency for ~150 lines. Chosen
// over cyclic Jacobi because it costs ~9n³ flops once instead of ~3n³ per sweep over 6-10 sweeps, which is what
// makes D = 4096 (Llama-2-7B, whole layer) feasible at all. The eigenvectors are kept transposed (one
// eigenvector per row), so every inner loop of both phases runs over contiguous memory.

export interface SymmetricEigen {
  /** Eigenvalues, largest first. */
  values: Float64Array;
  /** Row-major [n, n]: row j is the unit eigenvector of values[j]. A = Σ_j values[j] · v_j v_jᵀ. */
  vectors: Float64Array;
}

const MAX_QL_ITERATIONS = 64;

/** Eigenvalues and eigenvectors of the symmetric row-major n × n matrix `a` (`a` is left unchanged). */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new RangeError(`expected ${n}×${n} = ${n * n} entries, got ${a.length}`);
  // z[j*n + k] plays JAMA's V[k][j]; a is symmetric, so seeding z with a's rows is seeding V with a.
  const z = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: z };
  tridiagonalise(z, d, e, n);
  diagonalise(z, d, e, n);
  return sortDescending(z, d, n);
}

/** tred2: on return z holds the orthogonal transformation, d the diagonal and e the sub-diagonal (e[0] = 0). */
function tridiagonalise(z: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  const V = (row: number, col: number): number => z[col * n + row]!;
  for (let j = 0; j < n; j++) d[j] = V(n - 1, j);
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V(i - 1, j);
        z[j * n + i] = 0;
        z[i * n + j] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        z[i * n + j] = f;
        const col = j * n;
        g = e[j]! + z[col + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += z[col + k]! * d[k]!;
          e[k]! += z[col + k]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        const col = j * n;
        for (let k = j; k <= i - 1; k++) z[col + k]! -= f * e[k]! + g * d[k]!;
        d[j] = z[col + i - 1]!;
        z[col + i] = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the Householder transformations.
  for (let i = 0; i < n - 1; i++) {
    z[i * n + n - 1] = z[i * n + i]!;
    z[i * n + i] = 1;
    const h = d[i + 1]!;
    const next = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = z[next + k]! / h;
      for (let j = 0; j <= i; j++) {
        const col = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += z[next + k]! * z[col + k]!;
        for (let k = 0; k <= i; k++) z[col + k]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) z[next + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = z[j * n + n - 1]!;
    z[j * n + n - 1] = 0;
  }
  z[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** tql2: implicit QL with shifts on the tridiagonal (d, e), rotating the rows of z along. */
function diagonalise(z: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n && Math.abs(e[m]!) > eps * tst1) m++;
    if (m > l) {
      let iterations = 0;
      do {
        if (++iterations > MAX_QL_ITERATIONS) throw new Error(`eigendecomposition did not converge (eigenvalue ${l} of ${n})`);
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1, c2 = c, c3 = c;
        const el1 = e[l + 1]!;
        let s = 0, s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          const rowI = i * n, rowNext = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const t = z[rowNext + k]!;
            z[rowNext + k] = s * z[rowI + k]! + c * t;
            z[rowI + k] = c * z[rowI + k]! - s * t;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
}

/** Orders eigenpairs largest first, permuting z's rows in place (no second n × n array at D = 4096: 128 MB). */
function sortDescending(z: Float64Array, d: Float64Array, n: number): SymmetricEigen {
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j]! - d[i]! || i - j);
  const values = Float64Array.from(order, (from) => d[from]!);
  // Row `to` must receive old row order[to]: follow each cycle of the permutation with one spare row.
  const spare = new Float64Array(n);
  const placed = new Uint8Array(n);
  for (let start = 0; start < n; start++) {
    if (placed[start] || order[start] === start) continue;
    spare.set(z.subarray(start * n, (start + 1) * n));
    let to = start;
    for (;;) {
      placed[to] = 1;
      const from = order[to]!;
      if (from === start) {
        z.set(spare, to * n);
        break;
      }
      z.copyWithin(to * n, from * n, (from + 1) * n);
      to = from;
    }
  }
  return { values, vectors: z };
}
