// Picks the next token from a row of logits: greedy, or sampled with temperature, top-k and top-p (nucleus)
// from a seeded generator so that a seed reproduces a run.
import { mulberry32 } from './random';

export interface SamplingOptions {
  /** Greedy when true or when temperature is 0. */
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** One step's choice, complete: what the host's pickToken and an engine's own sampler (Engine.decodeSampled) take. */
export interface SamplingStep {
  greedy: boolean;
  temperature: number;
  /** 0: no top-k cut. */
  topK: number;
  /** 1: no top-p cut. */
  topP: number;
  /** Uniform in [0, 1) from the sampler's seeded generator; 0 when greedy (nothing is drawn). */
  u: number;
}

export class Sampler {
  private readonly random: () => number;
  private readonly greedy: boolean;
  private readonly temperature: number;
  private readonly topK: number;
  private readonly topP: number;

  constructor(options: SamplingOptions = {}) {
    const temperature = options.temperature ?? 1;
    const topK = options.topK ?? 0;
    const topP = options.topP ?? 1;
    if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new RangeError(`temperature must be >= 0, got ${temperature}`);
    if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`top-k must be a non-negative integer, got ${topK}`);
    if (!(topP > 0 && topP <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${topP}`);
    this.greedy = options.greedy === true || temperature === 0;
    this.temperature = temperature;
    this.topK = topK;
    this.topP = topP;
    this.random = mulberry32(options.seed ?? Date.now());
  }

  /** The next step's settings and draw: one uniform per sampled token, whether the host or the engine picks it. */
  step(): SamplingStep {
    return { greedy: this.greedy, temperature: this.temperature, topK: this.topK, topP: this.topP, u: this.greedy ? 0 : this.random() };
  }

  sample(logits: Float32Array): number {
    return pickToken(logits, this.step());
  }
}

/**
 * The host's pick, and the reference for an engine's own sampler: greedy is the first largest logit; otherwise the
 * candidates are cut by top-k, weighted by the softmax at the temperature, cut by top-p (the fewest largest reaching
 * the mass), and u picks among those kept, walked in vocabulary order as the CUDA sampler walks them, so that one u
 * gives the same token on both (the distribution does not depend on the order).
 */
export function pickToken(logits: Float32Array, step: SamplingStep): number {
  if (step.greedy) return argmax(logits);
  let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
  if (step.topK > 0) order = order.slice(0, step.topK);
  const max = logits[order[0]!]!;
  const weights = order.map((i) => Math.exp((logits[i]! - max) / step.temperature));
  let keep = order.length;
  if (step.topP < 1) {
    const total = weights.reduce((a, b) => a + b, 0);
    let mass = 0;
    for (let i = 0; i < order.length; i++) {
      mass += weights[i]! / total;
      if (mass >= step.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = order.slice(0, keep).map((token, i) => ({ token, weight: weights[i]! })).sort((a, b) => a.token - b.token);
  let r = step.u * kept.reduce((a, k) => a + k.weight, 0);
  for (const k of kept) {
    r -= k.weight;
    if (r < 0) return k.token;
  }
  return kept[kept.length - 1]!.token;
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}
