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

  sample(logits: Float32Array): number {
    if (this.greedy) return argmax(logits);
    // Candidates sorted by logit; top-k first (cheap cut), then softmax at the temperature, then top-p.
    let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
    if (this.topK > 0) order = order.slice(0, this.topK);
    const max = logits[order[0]!]!;
    const weights = order.map((i) => Math.exp((logits[i]! - max) / this.temperature));
    const total = weights.reduce((a, b) => a + b, 0);
    let keep = order.length;
    if (this.topP < 1) {
      let mass = 0;
      for (let i = 0; i < order.length; i++) {
        mass += weights[i]! / total;
        if (mass >= this.topP) {
          keep = i + 1;
          break;
        }
      }
    }
    const kept = weights.slice(0, keep).reduce((a, b) => a + b, 0);
    let r = this.random() * kept;
    for (let i = 0; i < keep; i++) {
      r -= weights[i]!;
      if (r < 0) return order[i]!;
    }
    return order[keep - 1]!;
  }

}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}
