// Seeded pseudo-random numbers (mulberry32): small, fast, and replayable from a seed, so a sampled answer or a
// failing randomised test can be reproduced. Not for anything that must be unpredictable.

/** A stream of 32-bit unsigned integers from `seed`. */
function mulberry32Words(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  const next = mulberry32Words(seed);
  return () => next() / 4294967296;
}

/** Uniform numbers in (0, 1): never 0, so they can go under a logarithm (Box-Muller). */
export function positiveUniform(seed: number): () => number {
  const next = mulberry32Words(seed);
  return () => (next() + 0.5) / 4294967296;
}
