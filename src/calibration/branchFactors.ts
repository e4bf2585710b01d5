// The factors of one branch (a layer's keys or values) as compress produces them and cskv.safetensors stores them.

export interface BranchFactors {
  /** Channel groups of the block-diagonal basis (1: the whole layer). */
  readonly groups: number;
  /** Features per group; the branch holds groups × rank features per token. */
  readonly rank: number;
  /** Row-major [groups, D/groups, rank] (for one group simply [D, rank]), orthonormal columns per group. */
  readonly basis: Float32Array;
  /** [D]. */
  readonly mean: Float32Array;
}
