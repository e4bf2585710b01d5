// One layer's full-precision keys and values laid out the way the CPU graph's attention reads them, in buffers
// with room to grow: keys transposed per kv head [kvHeads, headDim, capacity], values per kv head [kvHeads,
// capacity, headDim]. A step writes only its own tokens' slots; the graph reads the whole buffers in place
// (slots at or past `rows` are masked out) and never concatenates or transposes the history. Token-major rows
// [rows, kvHeads·headDim] go in and come out only at the edges (appends, snapshots).

/** Fewest slots a buffer has: a CSKV window of a few dozen tokens never reallocates. */
const MIN_CAPACITY = 64;

/**
 * Slots for `rows` tokens: rounded up to a granule that grows with the length (a power of two, at most 1/16 of it), so a
 * decode step rarely reallocates (a copy of the layer) and the masked slots the attention reads stay a few percent.
 */
export function capacityFor(rows: number): number {
  const granule = Math.max(MIN_CAPACITY, 2 ** Math.floor(Math.log2(Math.max(1, rows / 16))));
  return Math.max(MIN_CAPACITY, Math.ceil(rows / granule) * granule);
}

export class HeadMajorRows {
  private k: Float32Array;
  private v: Float32Array;
  private cap: number;
  private count = 0;

  constructor(readonly kvHeads: number, readonly headDim: number) {
    this.cap = capacityFor(0);
    this.k = new Float32Array(kvHeads * headDim * this.cap);
    this.v = new Float32Array(kvHeads * headDim * this.cap);
  }

  get rows(): number {
    return this.count;
  }

  get capacity(): number {
    return this.cap;
  }

  /** Keys [kvHeads, headDim, capacity], the whole buffer (read in place). */
  get keys(): Float32Array {
    return this.k;
  }

  /** Values [kvHeads, capacity, headDim], the whole buffer (read in place). */
  get values(): Float32Array {
    return this.v;
  }

  /** Makes room for `rows` tokens (keeping those held); capacity only changes here and when rows are dropped. */
  reserve(rows: number): void {
    if (rows > this.cap) this.resize(capacityFor(rows));
  }

  /** Appends `count` tokens given token-major ([count, kvHeads·headDim]). */
  append(k: Float32Array, v: Float32Array, count: number): void {
    this.reserve(this.count + count);
    const { kvHeads, headDim: hd, cap } = this;
    const D = kvHeads * hd;
    for (let t = 0; t < count; t++) {
      const slot = this.count + t;
      for (let h = 0; h < kvHeads; h++) {
        const src = t * D + h * hd;
        this.v.set(v.subarray(src, src + hd), (h * cap + slot) * hd);
        const keyBase = h * hd * cap + slot;
        for (let c = 0; c < hd; c++) this.k[keyBase + c * cap] = k[src + c]!;
      }
    }
    this.count += count;
  }

  /** Removes the first `count` tokens (a CSKV window's block leaving for the compressed branch). */
  dropFront(count: number): void {
    const { kvHeads, headDim: hd, cap } = this;
    const left = this.count - count;
    for (let h = 0; h < kvHeads; h++) {
      for (let c = 0; c < hd; c++) {
        const row = (h * hd + c) * cap;
        this.k.copyWithin(row, row + count, row + this.count);
      }
      this.v.copyWithin(h * cap * hd, (h * cap + count) * hd, (h * cap + this.count) * hd);
    }
    this.count = left;
    this.shrink();
  }

  truncate(rows: number): void {
    this.count = Math.min(this.count, rows);
    this.shrink();
  }

  /** The tokens held, token-major: keys and values [rows, kvHeads·headDim] (copies). */
  tokenMajor(): { k: Float32Array; v: Float32Array } {
    const { kvHeads, headDim: hd, cap, count } = this;
    const D = kvHeads * hd;
    const k = new Float32Array(count * D);
    const v = new Float32Array(count * D);
    for (let h = 0; h < kvHeads; h++) {
      for (let t = 0; t < count; t++) v.set(this.v.subarray((h * cap + t) * hd, (h * cap + t + 1) * hd), t * D + h * hd);
      for (let c = 0; c < hd; c++) {
        const row = (h * hd + c) * cap;
        for (let t = 0; t < count; t++) k[t * D + h * hd + c] = this.k[row + t]!;
      }
    }
    return { k, v };
  }

  /** Whatever attention reads past the held tokens is masked; a buffer far larger than needed is still read whole. */
  private shrink(): void {
    const fits = capacityFor(this.count);
    if (fits * 2 <= this.cap) this.resize(fits);
  }

  private resize(capacity: number): void {
    const { kvHeads, headDim: hd, cap: old, count } = this;
    const k = new Float32Array(kvHeads * hd * capacity);
    const v = new Float32Array(kvHeads * hd * capacity);
    for (let h = 0; h < kvHeads; h++) {
      for (let c = 0; c < hd; c++) k.set(this.k.subarray((h * hd + c) * old, (h * hd + c) * old + count), (h * hd + c) * capacity);
      v.set(this.v.subarray(h * old * hd, (h * old + count) * hd), h * capacity * hd);
    }
    this.k = k;
    this.v = v;
    this.cap = capacity;
  }
}
