// The calibration pieces on their own, against matrices and data whose answers are known: the eigensolver, the
// streaming statistics, the closed form, rank allocation, the Hadamard rotation, the baselines and the
// held-out scorer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preimageInputScaleSquared } from '../../src/calibration/activationScaling';
import type { BranchFactors } from '../../src/runtime/cskvFile';
import { closedFormDirections } from '../../src/calibration/closedForm';
import { symmetricEigen } from '../../src/calibration/eigen';
import { hadamardRotation } from '../../src/calibration/hadamard';
import { HeldOutError } from '../../src/calibration/heldOutError';
import { allocateRanks, rankBudget } from '../../src/calibration/rankAllocation';
import { SecondMoments } from '../../src/calibration/secondMoments';
import { weightSvdDirections } from '../../src/calibration/weightSvd';
import { positiveUniform } from '../../src/runtime/random';

/** Deterministic standard normals. */
function gaussian(seed: number): () => number {
  const uniform = positiveUniform(seed);
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

function randomMatrix(rows: number, cols: number, seed: number): Float64Array {
  const g = gaussian(seed);
  return Float64Array.from({ length: rows * cols }, () => g());
}

/** A random orthogonal n × n matrix (rows orthonormal), by Gram-Schmidt. */
function randomOrthogonal(n: number, seed: number): Float64Array {
  const q = randomMatrix(n, n, seed);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < i; k++) {
      let dot = 0;
      for (let c = 0; c < n; c++) dot += q[i * n + c]! * q[k * n + c]!;
      for (let c = 0; c < n; c++) q[i * n + c]! -= dot * q[k * n + c]!;
    }
    let norm = 0;
    for (let c = 0; c < n; c++) norm += q[i * n + c]! ** 2;
    for (let c = 0; c < n; c++) q[i * n + c]! /= Math.sqrt(norm);
  }
  return q;
}

/** Σ_j λ_j q_j q_jᵀ for the rows q_j of q. */
function fromSpectrum(q: Float64Array, values: readonly number[], n: number): Float64Array {
  const a = new Float64Array(n * n);
  values.forEach((l, j) => {
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) a[r * n + c]! += l * q[j * n + r]! * q[j * n + c]!;
  });
  return a;
}

function checkDecomposition(a: Float64Array, n: number, tolerance = 1e-10): { values: Float64Array; vectors: Float64Array } {
  const { values, vectors } = symmetricEigen(a, n);
  for (let j = 1; j < n; j++) assert.ok(values[j - 1]! >= values[j]!, `eigenvalues sorted: ${values[j - 1]} >= ${values[j]}`);
  let scale = 0;
  for (const x of a) scale = Math.max(scale, Math.abs(x));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0, rebuilt = 0;
      for (let c = 0; c < n; c++) {
        dot += vectors[i * n + c]! * vectors[j * n + c]!;
        rebuilt += vectors[c * n + i]! * values[c]! * vectors[c * n + j]!;
      }
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12, `orthonormal rows ${i}, ${j}: ${dot}`);
      assert.ok(Math.abs(rebuilt - a[i * n + j]!) <= tolerance * Math.max(scale, 1), `A = VΛVᵀ at (${i}, ${j}): ${rebuilt} vs ${a[i * n + j]}`);
    }
  }
  return { values, vectors };
}

test('eigen: a 2×2 and a diagonal matrix give their known eigenpairs', () => {
  const { values, vectors } = checkDecomposition(Float64Array.from([2, 1, 1, 2]), 2);
  assert.ok(Math.abs(values[0]! - 3) < 1e-14 && Math.abs(values[1]! - 1) < 1e-14);
  assert.ok(Math.abs(Math.abs(vectors[0]!) - Math.SQRT1_2) < 1e-14 && Math.abs(vectors[0]! - vectors[1]!) < 1e-14);
  const diagonal = new Float64Array(16);
  [0.5, -3, 7, 2].forEach((x, i) => (diagonal[i * 4 + i] = x));
  assert.deepEqual(Array.from(checkDecomposition(diagonal, 4).values), [7, 2, 0.5, -3]);
  assert.deepEqual(Array.from(symmetricEigen(Float64Array.of(4), 1).values), [4]);
});

test('eigen: random symmetric matrices with a known spectrum, repeated and zero eigenvalues included', () => {
  const n = 40;
  const q = randomOrthogonal(n, 7);
  const spectrum = Array.from({ length: n }, (_, i) => (i < 5 ? 100 / (i + 1) : i < 10 ? 2 : i < 30 ? 10 * Math.exp(-i / 4) : 0));
  const { values } = checkDecomposition(fromSpectrum(q, spectrum, n), n);
  const sorted = [...spectrum].sort((x, y) => y - x);
  values.forEach((l, i) => assert.ok(Math.abs(l - sorted[i]!) < 1e-10, `eigenvalue ${i}: ${l} vs ${sorted[i]}`));
  // A dense random symmetric matrix with negative eigenvalues, and the identity (all eigenvalues repeated).
  const r = randomMatrix(n, n, 3);
  const sym = Float64Array.from({ length: n * n }, (_, k) => (r[k]! + r[(k % n) * n + Math.floor(k / n)]!) / 2);
  checkDecomposition(sym, n);
  const identity = Float64Array.from({ length: 9 }, (_, k) => (k % 4 === 0 ? 1 : 0));
  assert.deepEqual(Array.from(checkDecomposition(identity, 3).values), [1, 1, 1]);
});

// Its speed is not asserted here (a timed test fails on a loaded machine); `compress` reports its own time.
test('eigen: a 256×256 covariance decomposes to 1e-10', () => {
  const n = 256, tokens = 300;
  const x = randomMatrix(tokens, n, 11);
  const cov = new Float64Array(n * n);
  for (let t = 0; t < tokens; t++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) cov[i * n + j]! += (x[t * n + i]! * x[t * n + j]! * (1 + i)) / tokens;
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) cov[i * n + j] = cov[j * n + i] = (cov[i * n + j]! + cov[j * n + i]!) / 2;
  checkDecomposition(cov, n, 1e-10);
});

test('second moments: streamed in pieces, far from zero, they match a two-pass covariance; blocks are its diagonal blocks', () => {
  const D = 10, tokens = 500;
  const g = gaussian(5);
  const rows = Float32Array.from({ length: tokens * D }, (_, k) => 1000 + (k % D) * 50 + g() * (1 + (k % D)));
  const whole = new SecondMoments(D);
  const blocks = new SecondMoments(D, 2);
  for (const [from, to] of [[0, 1], [1, 130], [130, 500]] as const) {
    whole.add(rows.subarray(from * D, to * D), to - from);
    blocks.add(rows.subarray(from * D, to * D), to - from);
  }
  const mean = new Float64Array(D);
  for (let t = 0; t < tokens; t++) for (let c = 0; c < D; c++) mean[c]! += rows[t * D + c]! / tokens;
  const cov = new Float64Array(D * D);
  for (let t = 0; t < tokens; t++) for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) cov[i * D + j]! += ((rows[t * D + i]! - mean[i]!) * (rows[t * D + j]! - mean[j]!)) / tokens;
  assert.equal(whole.count, tokens);
  whole.mean().forEach((m, c) => assert.ok(Math.abs(m - mean[c]!) < 1e-9));
  whole.covariance().forEach((x, k) => assert.ok(Math.abs(x - cov[k]!) < 1e-8 * (1 + Math.abs(cov[k]!)), `cov[${k}] ${x} vs ${cov[k]}`));
  for (const g2 of [0, 1]) {
    const block = blocks.covariance(g2, 2);
    const fromWhole = whole.covariance(g2, 2);
    block.forEach((x, k) => {
      const i = Math.floor(k / 5) + g2 * 5, j = (k % 5) + g2 * 5;
      assert.ok(Math.abs(x - cov[i * D + j]!) < 1e-8 * (1 + Math.abs(x)));
      assert.ok(Math.abs(x - fromWhole[k]!) < 1e-8 * (1 + Math.abs(x)));
    });
  }
  assert.throws(() => blocks.covariance(0, 1), /not inside/);
});

test('closed form: on low-rank data plus noise the top directions span the true subspace; at full rank the error is ~0', () => {
  const D = 12, rank = 3, tokens = 2000;
  const g = gaussian(9);
  const mixing = randomMatrix(rank, D, 21); // rows span the true subspace
  const mean = Float64Array.from({ length: D }, (_, c) => 5 - c);
  const sample = (): Float32Array => {
    const z = [g() * 3, g() * 2, g()];
    return Float32Array.from({ length: D }, (_, c) => mean[c]! + z.reduce((a, zi, i) => a + zi * mixing[i * D + c]!, 0) + 1e-3 * g());
  };
  const stats = new SecondMoments(D);
  for (let t = 0; t < tokens; t++) stats.add(sample(), 1);
  const { rows, captured } = closedFormDirections(stats.covariance(), D);
  // Every mixing row lies in the span of the first 3 directions: its projection keeps its whole norm.
  for (let i = 0; i < rank; i++) {
    const m = mixing.subarray(i * D, (i + 1) * D);
    let norm = 0, kept = 0;
    for (let c = 0; c < D; c++) norm += m[c]! ** 2;
    for (let j = 0; j < rank; j++) {
      let dot = 0;
      for (let c = 0; c < D; c++) dot += m[c]! * rows[j * D + c]!;
      kept += dot * dot;
    }
    assert.ok(kept / norm > 1 - 1e-5, `mixing row ${i} keeps ${kept / norm} of its norm in the top-3 subspace`);
  }
  assert.ok(captured[rank - 1]! > 1e4 * captured[rank]!, 'a gap after the true rank');
  // Held-out data: rank 3 leaves only the noise; full rank leaves nothing.
  const factorsAt = (r: number): BranchFactors => {
    const basis = new Float32Array(D * r);
    for (let c = 0; c < D; c++) for (let j = 0; j < r; j++) basis[c * r + j] = rows[j * D + c]!;
    return { groups: 1, rank: r, basis, mean: Float32Array.from(stats.mean()) };
  };
  const held = Array.from({ length: 64 }, sample);
  const scoreAt = (r: number, bits: 16 | 2): number[] => {
    const e = new HeldOutError(factorsAt(r), D, 'v', bits, 8);
    held.forEach((x) => e.add(x, 1));
    const s = e.score();
    return [s.relativeError, s.storedRelativeError];
  };
  const [three] = scoreAt(3, 16);
  assert.ok(three! < 1e-5, `rank-3 held-out error ${three}`);
  const [full, fullStored] = scoreAt(D, 16);
  assert.ok(full! < 1e-10, `full-rank error ${full}`);
  assert.ok(fullStored! < 1e-5, `full rank stored as fp16: ${fullStored}`);
  const [, twoBit] = scoreAt(3, 2);
  assert.ok(twoBit! > 1e-3 && twoBit! < 1, `2-bit storage costs accuracy: ${twoBit}`);
});

test('rank allocation: spends the budget exactly, every branch keeps rank ≥ 1, high-variance layers get more', () => {
  const D = 16;
  const spectrum = (scale: number, decay: number): Float64Array => Float64Array.from({ length: D }, (_, i) => scale * Math.exp(-i * decay));
  // Layer 0 has 10× the variance of the others; layer 2's values are nearly rank one.
  const branches = [spectrum(10, 0.3), spectrum(10, 0.3), spectrum(1, 0.3), spectrum(1, 0.3), spectrum(1, 0.3), spectrum(1, 5)].map((s) => ({ groups: [s] }));
  const budget = rankBudget(0.25, 3, D);
  assert.equal(budget, 24);
  const ranks = allocateRanks(branches, budget);
  assert.equal(ranks.reduce((a, b) => a + b, 0), budget);
  assert.ok(ranks.every((r) => r >= 1));
  assert.ok(ranks[0]! > ranks[2]! && ranks[1]! > ranks[3]!, `ranks ${ranks}`);
  assert.equal(ranks[5], 1, 'a branch with one significant direction keeps one');
  // The greedy choice is optimal: no single move of one feature between branches keeps more variance.
  const kept = (rs: number[]): number => rs.reduce((a, r, b) => a + branches[b]!.groups[0]!.slice(0, r).reduce((x, y) => x + y, 0), 0);
  for (let from = 0; from < ranks.length; from++) {
    for (let to = 0; to < ranks.length; to++) {
      if (from === to || ranks[from]! <= 1 || ranks[to]! >= D) continue;
      const moved = [...ranks];
      moved[from]!--;
      moved[to]!++;
      assert.ok(kept(moved) <= kept(ranks) + 1e-12);
    }
  }
  // Density 1 gives full rank; groups spend `groups` channels per step, and ranks stay whole per group.
  assert.deepEqual(allocateRanks(branches, rankBudget(1, 3, D)), Array(6).fill(D));
  const grouped = branches.map((b) => ({ groups: [b.groups[0]!.slice(0, 8), b.groups[0]!.slice(0, 8).map((x) => x / 2)] }));
  const groupedRanks = allocateRanks(grouped, budget);
  assert.equal(groupedRanks.reduce((a, r) => a + 2 * r, 0), budget);
  assert.throws(() => allocateRanks(branches, 5), /below the minimum of 6/);
  assert.throws(() => rankBudget(0, 3, D), /density/);
  assert.throws(() => rankBudget(1.5, 3, D), /density/);
});

test('hadamard rotation: orthogonal for any rank, a normalised Hadamard for powers of two, and it evens out the variances', () => {
  for (const r of [1, 2, 8, 64, 5, 102]) {
    const R = hadamardRotation(r);
    for (let i = 0; i < r; i++) {
      for (let j = 0; j < r; j++) {
        let dot = 0;
        for (let k = 0; k < r; k++) dot += R[i * r + k]! * R[j * r + k]!;
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12, `r = ${r}: rows ${i}, ${j}`);
      }
    }
    if ((r & (r - 1)) === 0) R.forEach((x) => assert.ok(Math.abs(Math.abs(x) - 1 / Math.sqrt(r)) < 1e-15));
  }
  // Directions with a steep spectrum: after rotation each output feature's variance Σ_i R_ij² λ_i is near the mean.
  const r = 102;
  const lambda = Array.from({ length: r }, (_, i) => Math.exp(-i / 10));
  const R = hadamardRotation(r);
  const out = Array.from({ length: r }, (_, j) => lambda.reduce((a, l, i) => a + R[i * r + j]! ** 2 * l, 0));
  const ratio = Math.max(...out) / Math.min(...out);
  assert.ok(ratio < 4, `max/min feature variance after rotation ${ratio} (before: ${lambda[0]! / lambda[r - 1]!})`);
  // 102 = 64 + 32 + 4 + 2: the value quantiser's 32-feature groups 0-2 each fall inside one block, so they are even.
  for (let group = 0; group < 3; group++) {
    const slice = out.slice(group * 32, group * 32 + 32);
    assert.ok(Math.max(...slice) / Math.min(...slice) < 1 + 1e-9, `group ${group} evened out`);
  }
});

test('weight SVD: directions are the left singular vectors of W; ASVD pre-image scale is exact for an invertible W', () => {
  const D = 6, H = 6;
  // W = Q diag(s) Pᵀ with known singular values: the directions must be Q's columns in order of s.
  const q = randomOrthogonal(D, 31), p = randomOrthogonal(H, 32);
  const s = [6, 5, 4, 3, 2, 1];
  const w = new Float32Array(D * H);
  for (let i = 0; i < D; i++) for (let h = 0; h < H; h++) w[i * H + h] = s.reduce((a, sj, j) => a + q[j * D + i]! * sj * p[j * H + h]!, 0);
  const identity = Float64Array.from({ length: D * D }, (_, k) => (k % (D + 1) === 0 ? 1 : 0));
  const { rows, captured } = weightSvdDirections(w, H, 0, D, identity);
  for (let j = 0; j < D; j++) {
    let dot = 0;
    for (let c = 0; c < D; c++) dot += rows[j * D + c]! * q[j * D + c]!;
    assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-5, `direction ${j} is singular vector ${j}: |dot| = ${Math.abs(dot)}`);
    assert.ok(Math.abs(captured[j]! - 1) < 1e-5);
  }
  // Inputs with known per-channel second moments through a square W: the pre-image recovers them exactly.
  const g = gaussian(41);
  const bias = Float32Array.from([1, -2, 3, 0, 0.5, 4]);
  const rms = [3, 0.1, 1, 2, 0.5, 1.5];
  const stats = new SecondMoments(D);
  const inputs: number[][] = [];
  for (let t = 0; t < 4000; t++) {
    const x = rms.map((r) => r * g() + 0.2);
    inputs.push(x);
    stats.add(Float32Array.from({ length: D }, (_, i) => bias[i]! + x.reduce((a, xh, h) => a + w[i * H + h]! * xh, 0)), 1);
  }
  const secondMoment = rms.map((_, h) => inputs.reduce((a, x) => a + x[h]! ** 2, 0) / inputs.length);
  const scale = preimageInputScaleSquared(w, D, H, bias, stats.covariance(), stats.mean(), 0.5);
  scale.forEach((x, h) => assert.ok(Math.abs(x - Math.sqrt(secondMoment[h]!)) < 1e-3 * Math.sqrt(secondMoment[h]!), `channel ${h}: ${x} vs ${Math.sqrt(secondMoment[h]!)}`));
});
