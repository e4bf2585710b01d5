// `compress --rotate hadamard`: any r × r rotation R of a basis is equally optimal (U R spans the same space), but
// the eigenbasis puts most variance in the first features, and the value quantiser shares one min/max across 32
// consecutive features of a token. A normalised Hadamard R gives every output feature the average variance of
// all inputs, so no feature's range dominates its group. Whether that beats the eigenbasis at low bits is
// measured by compress's held-out "stored" error, not assumed. On a random model whose k/v projections have a
// steep, non-channel-aligned spectrum (D = 128, density 0.2, 16k tokens of this project's source), rotation cut
// the values' 2-bit stored error from 0.229 to 0.114 and 4-bit from 0.020 to 0.015, and made the keys' slightly
// worse (2 bits: 0.141 to 0.146): keys are quantised per channel, so an uneven spread across channels costs them
// nothing to begin with. Hence `--rotate hadamard-values`. Real checkpoints may differ: measure them.
//
// r is rarely a power of two (0.2 × 512 ≈ 102). Hadamard matrices of other orders exist only for some multiples
// of 4 and need number-theoretic constructions, so R here is block-diagonal over r's binary decomposition
// (102 = 64 + 32 + 4 + 2), each block a normalised Sylvester Hadamard with random signs on its inputs. The
// inputs, sorted by variance, are dealt to the blocks in proportion to their sizes (stratified), so each block
// averages a slice of the whole spectrum and the blocks' output variances come out nearly equal too.
// R is orthogonal either way: the blocks map disjoint input sets onto disjoint output ranges.
import { mulberry32 } from '../runtime/random';

/** Row-major [r, r] orthogonal R: input direction i (row), output feature j (column). Deterministic for a seed. */
export function hadamardRotation(r: number, seed = 0x5eed): Float64Array {
  if (!Number.isInteger(r) || r < 1) throw new RangeError(`rank must be a positive integer, got ${r}`);
  const sizes: number[] = [];
  for (let bit = 1 << 30; bit >= 1; bit >>>= 1) if (r & bit) sizes.push(bit);
  const members: number[][] = sizes.map(() => []);
  for (let i = 0; i < r; i++) {
    let pick = -1;
    for (let b = 0; b < sizes.length; b++) {
      if (members[b]!.length === sizes[b]) continue;
      // Webster's rule: block b's k-th input sits near rank (k + 1/2) / size of the way down the spectrum.
      if (pick < 0 || (members[b]!.length + 0.5) / sizes[b]! < (members[pick]!.length + 0.5) / sizes[pick]!) pick = b;
    }
    members[pick]!.push(i);
  }
  const random = mulberry32(seed);
  const out = new Float64Array(r * r);
  let firstColumn = 0;
  sizes.forEach((size, b) => {
    const norm = 1 / Math.sqrt(size);
    members[b]!.forEach((input, p) => {
      const sign = random() < 0.5 ? -norm : norm;
      for (let q = 0; q < size; q++) out[input * r + firstColumn + q] = sylvesterSign(p, q) * sign;
    });
    firstColumn += size;
  });
  return out;
}

/** Entry (p, q) of the unnormalised Sylvester Hadamard matrix: (-1)^popcount(p & q). */
function sylvesterSign(p: number, q: number): number {
  let x = p & q;
  let parity = 0;
  while (x) {
    parity ^= 1;
    x &= x - 1;
  }
  return parity ? -1 : 1;
}

