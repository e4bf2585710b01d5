// Ranks for every layer's keys and values from one global density (docs/cskv.md: the paper sets density per model
// by hand and names per-layer assignment as missing). Greedy on retained variance: each step gives one more
// feature to the branch whose next eigen-direction retains the most variance per stored channel. The eigenvalues
// of each branch only decrease, so the greedy choice is the optimal one for the total retained variance.

export interface BranchSpectrum {
  /** Eigenvalues of each channel group's covariance, largest first (one array for a whole-layer basis). */
  readonly groups: readonly Float64Array[];
}

/** Channels the compressed cache may hold per token: density × 2 (keys and values) × layers × D. */
export function rankBudget(density: number, layers: number, channels: number): number {
  if (!(density > 0 && density <= 1)) throw new RangeError(`density must be in (0, 1], got ${density}`);
  return Math.round(density * 2 * layers * channels);
}

/**
 * Rank per group of each branch (the same for all groups of a branch, as the file's [G, D/G, r] basis requires),
 * spending at most `budget` channels (rank × groups summed over branches); every branch gets rank ≥ 1.
 */
export function allocateRanks(branches: readonly BranchSpectrum[], budget: number): number[] {
  const ranks = branches.map(() => 1);
  let spent = branches.reduce((a, b) => a + b.groups.length, 0);
  if (spent > budget) {
    throw new RangeError(`a budget of ${budget} channels is below the minimum of ${spent} (rank 1 for every key and value branch); raise the density`);
  }
  const gain = (b: number): number => {
    const { groups } = branches[b]!;
    const r = ranks[b]!;
    if (r >= groups[0]!.length) return -Infinity;
    let sum = 0;
    for (const values of groups) sum += values[r]!;
    return sum / groups.length;
  };
  const gains = branches.map((_, b) => gain(b));
  for (;;) {
    let best = -1;
    for (let b = 0; b < branches.length; b++) {
      if (gains[b] === -Infinity || spent + branches[b]!.groups.length > budget) continue;
      if (best < 0 || gains[b]! > gains[best]!) best = b;
    }
    if (best < 0) return ranks;
    ranks[best]!++;
    spent += branches[best]!.groups.length;
    gains[best] = gain(best);
  }
}
