// Streaming statistics of one layer's keys (or values): token count, channel sums and the sum of outer products,
// all float64, per diagonal block of channels (the whole layer, or each group of kv heads: a block-diagonal basis
// needs only the diagonal blocks). The activations themselves are never kept.
//
// Sums are taken of x - shift, with the shift fixed to the mean of the first rows seen: Qwen2's key biases put
// means far from zero, and centring by a nearby point keeps S/n - m mᵀ from cancelling away the variance.

export class SecondMoments {
  count = 0;
  private shift: Float64Array | undefined;
  private readonly sum: Float64Array;
  /** Per block, the upper triangle of Σ (x - shift)(x - shift)ᵀ, row-major [width, width]. */
  private readonly products: Float64Array[];
  private scratch = new Float64Array(0);
  readonly width: number;

  constructor(readonly channels: number, readonly blocks = 1) {
    if (!Number.isInteger(blocks) || blocks < 1 || channels % blocks !== 0) throw new RangeError(`${channels} channels do not split into ${blocks} blocks`);
    this.width = channels / blocks;
    this.sum = new Float64Array(channels);
    this.products = Array.from({ length: blocks }, () => new Float64Array(this.width * this.width));
  }

  /** Bytes held by statistics of this shape. */
  static bytes(channels: number, blocks: number): number {
    return (channels * channels / blocks + 2 * channels) * 8;
  }

  /** Adds `tokens` rows of a row-major [tokens, channels] array. */
  add(rows: Float32Array, tokens: number): void {
    const D = this.channels, w = this.width;
    if (rows.length < tokens * D) throw new RangeError(`expected ${tokens} × ${D} values, got ${rows.length}`);
    if (tokens === 0) return;
    if (!this.shift) {
      const shift = new Float64Array(D);
      for (let t = 0; t < tokens; t++) for (let c = 0; c < D; c++) shift[c]! += rows[t * D + c]!;
      for (let c = 0; c < D; c++) shift[c]! /= tokens;
      this.shift = shift;
    }
    const shift = this.shift;
    if (this.scratch.length < w * tokens) this.scratch = new Float64Array(w * tokens);
    const xt = this.scratch; // one block's centred rows, transposed to [channel, token] for contiguous dot products
    for (let b = 0; b < this.blocks; b++) {
      const first = b * w;
      for (let t = 0; t < tokens; t++) {
        for (let c = 0; c < w; c++) {
          const x = rows[t * D + first + c]! - shift[first + c]!;
          xt[c * tokens + t] = x;
          this.sum[first + c]! += x;
        }
      }
      accumulateUpperGram(xt, w, tokens, this.products[b]!);
    }
    this.count += tokens;
  }

  /** Mean of every channel. */
  mean(): Float64Array {
    const out = new Float64Array(this.channels);
    for (let c = 0; c < this.channels; c++) out[c] = (this.shift?.[c] ?? 0) + (this.count ? this.sum[c]! / this.count : 0);
    return out;
  }

  /**
   * Covariance (divided by the count) of channel group `group` of `groups` equal groups, full symmetric
   * row-major [D/groups, D/groups]. `groups` must be a multiple of the blocks these statistics keep.
   */
  covariance(group = 0, groups = 1): Float64Array {
    if (this.count === 0) throw new RangeError('no rows were added');
    if (groups % this.blocks !== 0 || group < 0 || group >= groups) throw new RangeError(`group ${group} of ${groups} is not inside the ${this.blocks} blocks kept`);
    const n = this.channels / groups;
    const first = group * n;
    const block = Math.floor(first / this.width);
    const offset = first - block * this.width;
    const s = this.products[block]!;
    const w = this.width;
    const mean = new Float64Array(n);
    for (let i = 0; i < n; i++) mean[i] = this.sum[first + i]! / this.count;
    const out = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        const c = s[(offset + i) * w + offset + j]! / this.count - mean[i]! * mean[j]!;
        out[i * n + j] = c;
        out[j * n + i] = c;
      }
    }
    return out;
  }
}

/** g[i][j] += Σ_t x[i][t] x[j][t] for j ≥ i; x is row-major [n, tokens]. Two rows at a time to halve the loads. */
function accumulateUpperGram(x: Float64Array, n: number, tokens: number, g: Float64Array): void {
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const a = i * tokens, b = (i + 1) * tokens;
    let aa = 0;
    for (let t = 0; t < tokens; t++) aa += x[a + t]! * x[a + t]!;
    g[i * n + i]! += aa;
    for (let j = i + 1; j < n; j++) {
      const c = j * tokens;
      let sa = 0, sb = 0;
      for (let t = 0; t < tokens; t++) {
        const xj = x[c + t]!;
        sa += x[a + t]! * xj;
        sb += x[b + t]! * xj;
      }
      g[i * n + j]! += sa;
      g[(i + 1) * n + j]! += sb;
    }
  }
  if (i < n) {
    const a = i * tokens;
    let aa = 0;
    for (let t = 0; t < tokens; t++) aa += x[a + t]! * x[a + t]!;
    g[i * n + i]! += aa;
  }
}
