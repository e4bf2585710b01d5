// The reuse rule of every prompt and layout kept in the cache: tokens at the same positions that are equal have the
// same keys and values, so a cache holding `a` serves `b` up to their first difference.

/** How many leading tokens `a` (from index `from`) and `b` share. */
export function commonPrefixLength(a: readonly number[], b: readonly number[], from = 0): number {
  const n = Math.min(a.length - from, b.length);
  let i = 0;
  while (i < n && a[from + i] === b[i]) i++;
  return Math.max(0, i);
}
