// Rotary position embedding frequencies for every scaling type the runtime reads, following transformers'
// modeling_rope_utils. Keys are cached before RoPE, so the engine rotates them at attention time with these
// tables; for dynamic NTK that means every key is rotated with the frequencies of the current length.
import type { ModelConfig } from './config';

export interface RopeFrequencies {
  readonly invFreq: Float64Array; // headDim / 2 entries
  /** Multiplies cos and sin (yarn's attention factor; 1 otherwise). */
  readonly attentionFactor: number;
}

export function ropeFrequencies(config: ModelConfig, seqLen: number): RopeFrequencies {
  const { rope, headDim: dim } = config;
  const half = dim / 2;
  const base = (theta: number): Float64Array => {
    const f = new Float64Array(half);
    for (let i = 0; i < half; i++) f[i] = 1 / theta ** ((2 * i) / dim);
    return f;
  };
  const p = rope.params;
  switch (rope.type) {
    case 'default':
      return { invFreq: base(rope.theta), attentionFactor: 1 };
    case 'linear':
      return { invFreq: base(rope.theta).map((f) => f / rope.factor), attentionFactor: 1 };
    case 'dynamic': {
      const original = ropeScaleLength(config, 0);
      const len = ropeScaleLength(config, seqLen);
      const theta = rope.theta * ((rope.factor * len) / original - (rope.factor - 1)) ** (dim / (dim - 2));
      return { invFreq: base(theta), attentionFactor: 1 };
    }
    case 'yarn':
      return yarn(config, base);
    case 'llama3': {
      const factor = rope.factor;
      const low = numberParam(p.low_freq_factor, 1);
      const high = numberParam(p.high_freq_factor, 4);
      const oldContext = numberParam(p.original_max_position_embeddings, 8192);
      const lowWavelen = oldContext / low;
      const highWavelen = oldContext / high;
      const invFreq = base(rope.theta).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f / factor;
        const smooth = (oldContext / wavelen - low) / (high - low);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
      return { invFreq, attentionFactor: 1 };
    }
  }
}

function yarn(config: ModelConfig, base: (theta: number) => Float64Array): RopeFrequencies {
  const { rope, headDim: dim, maxPositions } = config;
  const p = rope.params;
  let factor = rope.factor;
  let original = maxPositions;
  if (typeof p.original_max_position_embeddings === 'number') {
    original = p.original_max_position_embeddings;
    // transformers derives the factor from max_position_embeddings / original when both are given. Where a config
    // leaves max_position_embeddings at the original length (Qwen2.5's documented yarn setting) that ratio is 1
    // and would silently switch scaling off, so the configured factor is kept in that case.
    if (maxPositions > original) factor = maxPositions / original;
  }
  const mscale = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  let attentionFactor = typeof p.attention_factor === 'number' ? p.attention_factor : undefined;
  if (attentionFactor === undefined) {
    const m = p.mscale, mAll = p.mscale_all_dim;
    attentionFactor = typeof m === 'number' && m && typeof mAll === 'number' && mAll ? mscale(factor, m) / mscale(factor, mAll) : mscale(factor);
  }
  const betaFast = numberParam(p.beta_fast, 32) || 32;
  const betaSlow = numberParam(p.beta_slow, 1) || 1;
  const truncate = p.truncate !== false;
  const correctionDim = (rotations: number): number => (dim * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(rope.theta));
  let low = correctionDim(betaFast);
  let high = correctionDim(betaSlow);
  if (truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  if (low === high) high += 0.001;
  const extrapolation = base(rope.theta);
  const invFreq = extrapolation.map((f, i) => {
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    const extrapolationFactor = 1 - ramp;
    return (f / factor) * (1 - extrapolationFactor) + f * extrapolationFactor;
  });
  return { invFreq, attentionFactor };
}

function numberParam(v: number | boolean | undefined, fallback: number): number {
  return typeof v === 'number' ? v : fallback;
}

/** Whether the frequencies depend on the sequence length (so cached tables must be rebuilt as it grows). */
export function ropeDependsOnLength(config: ModelConfig): boolean {
  return config.rope.type === 'dynamic';
}

/**
 * The length the frequencies are computed for at a sequence of `seqLen`: tables made for one length serve every
 * length with the same value. Dynamic NTK: max(seqLen, the original context), so its tables change only past it;
 * every other type: 0 (never).
 */
export function ropeScaleLength(config: ModelConfig, seqLen: number): number {
  if (config.rope.type !== 'dynamic') return 0;
  return Math.max(seqLen, numberParam(config.rope.params.original_max_position_embeddings, config.maxPositions));
}

export interface RopeTables {
  cos: Float32Array;
  sin: Float32Array;
}

/**
 * The tables for positions [0, positions) as two small ones to compose by angle addition (a GPU does it where the
 * whole tables would have to go up): position p = q * block + r, with block about sqrt(positions), takes
 *   cos(pθ) = cos(q·block·θ) cos(rθ) - sin(q·block·θ) sin(rθ),  sin(pθ) = sin(q·block·θ) cos(rθ) + cos(q·block·θ) sin(rθ)
 * from `coarse` [ceil(positions / block), hd] (the attention factor in it) and `fine` [block, hd]. Every factor is
 * computed in float64 and rounded once, so the composed f32 values stay within a few roundings of direct ones
 * (test/runtime/rope.test.ts), where multiplying f32 positions by f32 frequencies would lose the angle itself.
 */
export interface RopeFactors {
  coarse: RopeTables;
  fine: RopeTables;
  block: number;
}

export function ropeTableFactors(freqs: RopeFrequencies, headDim: number, positions: number): RopeFactors {
  const block = Math.max(1, Math.ceil(Math.sqrt(positions)));
  const rows = Math.ceil(positions / block);
  return {
    coarse: ropeTables(freqs, headDim, Float64Array.from({ length: rows }, (_, q) => q * block)),
    fine: ropeTables({ invFreq: freqs.invFreq, attentionFactor: 1 }, headDim, Float64Array.from({ length: block }, (_, r) => r)),
    block,
  };
}

/**
 * cos and sin tables [positions, headDim] (each half repeated, transformers' rotate_half layout), scaled by the
 * attention factor, for positions start..start+count-1.
 */
export function ropeTables(freqs: RopeFrequencies, headDim: number, positions: ArrayLike<number>): RopeTables {
  const half = headDim / 2;
  const cos = new Float32Array(positions.length * headDim);
  const sin = new Float32Array(positions.length * headDim);
  for (let t = 0; t < positions.length; t++) {
    const pos = positions[t]!;
    for (let i = 0; i < half; i++) {
      const angle = pos * freqs.invFreq[i]!;
      const c = Math.cos(angle) * freqs.attentionFactor;
      const s = Math.sin(angle) * freqs.attentionFactor;
      cos[t * headDim + i] = c;
      cos[t * headDim + i + half] = c;
      sin[t * headDim + i] = s;
      sin[t * headDim + i + half] = s;
    }
  }
  return { cos, sin };
}
