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
  /** Per block, the upper triangle of Σ (x - shift)(x - shift)ᵀ, packed row by row (row i holds columns i..width-1). */
  private readonly products: Float64Array[];
  private scratch = new Float64Array(0);
  readonly width: number;

  constructor(readonly channels: number, readonly blocks = 1) {
    if (!Number.isInteger(blocks) || blocks < 1 || channels % blocks !== 0) throw new RangeError(`${channels} channels do not split into ${blocks} blocks`);
    this.width = channels / blocks;
    this.sum = new Float64Array(channels);
    this.products = Array.from({ length: blocks }, () => new Float64Array((this.width * (this.width + 1)) / 2));
  }

  /** Bytes held by statistics of this shape. */
  static bytes(channels: number, blocks: number): number {
    const width = channels / blocks;
    return (blocks * (width * (width + 1)) / 2 + 2 * channels) * 8;
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
        const c = s[rowStart(offset + i, w) + j - i]! / this.count - mean[i]! * mean[j]!;
        out[i * n + j] = c;
        out[j * n + i] = c;
      }
    }
    return out;
  }
}

/** Where row i of a packed upper triangle of width n starts (its first entry is column i). */
function rowStart(i: number, n: number): number {
  return i * n - (i * (i - 1)) / 2;
}

/** g[i][j] += Σ_t x[i][t] x[j][t] for j ≥ i (g packed); x is row-major [n, tokens]. Four rows at a time to cut the loads. */
function accumulateUpperGram(x: Float64Array, n: number, tokens: number, g: Float64Array): void {
  const at = (i: number, j: number): number => rowStart(i, n) + j - i;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const a = i * tokens, b = a + tokens, c = b + tokens, d = c + tokens;
    // The 4 × 4 corner first (its lower part is not stored), then every later row j against all four.
    for (let p = 0; p < 4; p++) {
      for (let q = p; q < 4; q++) {
        let s = 0;
        const u = a + p * tokens, v = a + q * tokens;
        for (let t = 0; t < tokens; t++) s += x[u + t]! * x[v + t]!;
        g[at(i + p, i + q)]! += s;
      }
    }
    const ra = rowStart(i, n) - i, rb = rowStart(i + 1, n) - i - 1, rc = rowStart(i + 2, n) - i - 2, rd = rowStart(i + 3, n) - i - 3;
    for (let j = i + 4; j < n; j++) {
      const e = j * tokens;
      let sa = 0, sb = 0, sc = 0, sd = 0;
      for (let t = 0; t < tokens; t++) {
        const xj = x[e + t]!;
        sa += x[a + t]! * xj;
        sb += x[b + t]! * xj;
        sc += x[c + t]! * xj;
        sd += x[d + t]! * xj;
      }
      g[ra + j]! += sa;
      g[rb + j]! += sb;
      g[rc + j]! += sc;
      g[rd + j]! += sd;
    }
  }
  for (; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      const u = i * tokens, v = j * tokens;
      for (let t = 0; t < tokens; t++) s += x[u + t]! * x[v + t]!;
      g[at(i, j)]! += s;
    }
  }
}
