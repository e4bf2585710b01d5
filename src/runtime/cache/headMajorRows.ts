// One layer's full-precision keys and values laid out the way the CPU graph's attention reads them, in buffers
// with room to grow: keys transposed per kv head [kvHeads, headDim, capacity], values per kv head [kvHeads,
// capacity, headDim]. A step writes only its own tokens' slots; the graph reads the whole buffers in place
// (slots at or past `rows` are masked out) and never concatenates or transposes the history. Token-major rows
// [rows, kvHeads·headDim] go in and come out only at the edges (appends, snapshots). Elements are f32, or fp16 bit
// patterns (half the bytes; the graph widens them as it reads).
//
// The capacity (the slots per kv head that attention reads, masked past `rows`) and the room the buffers have are
// apart: a prefill that knows its final length reserves the room once, and the capacity still grows granule by
// granule inside it (laid out again in place), so an early chunk reads no more slots than it would have.
import { floatToHalfBits, halfBitsToFloat } from '../half';

type Storage = Float32Array | Uint16Array;

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
  /** The buffers, of `room` slots per kv head, of which the layout uses the first `cap`. */
  private k: Storage;
  private v: Storage;
  private room: number;
  private cap: number;
  private count = 0;

  /** `half`: elements are fp16 bit patterns. */
  constructor(readonly kvHeads: number, readonly headDim: number, readonly half = false) {
    this.cap = this.room = capacityFor(0);
    this.k = this.make(this.room);
    this.v = this.make(this.room);
  }

  get bytesPerElement(): number {
    return this.half ? 2 : 4;
  }

  get rows(): number {
    return this.count;
  }

  get capacity(): number {
    return this.cap;
  }

  /** Slots per kv head the buffers hold without reallocating (at least the capacity). */
  get reserved(): number {
    return this.room;
  }

  /** Keys [kvHeads, headDim, capacity] (a view of the buffer, read in place). */
  get keys(): Storage {
    return this.k.subarray(0, this.kvHeads * this.headDim * this.cap);
  }

  /** Values [kvHeads, capacity, headDim] (a view of the buffer, read in place). */
  get values(): Storage {
    return this.v.subarray(0, this.kvHeads * this.headDim * this.cap);
  }

  /**
   * Room for `rows` tokens, allocated now and kept until rows are dropped: the appends up to it allocate nothing (a
   * buffer grown step by step leaves each smaller one freed, and glibc keeps such freed memory in the process). The
   * capacity does not change.
   */
  reserve(rows: number): void {
    const room = capacityFor(rows);
    if (room > this.room) this.layOut(this.make(room), this.make(room), this.cap);
  }

  /** The capacity for `rows` tokens (keeping those held): in place within the room, else in new buffers. */
  private grow(rows: number): void {
    if (rows <= this.cap) return;
    const cap = capacityFor(rows);
    if (cap <= this.room) {
      this.layOut(this.k, this.v, cap);
    } else {
      this.layOut(this.make(cap), this.make(cap), cap);
    }
  }

  /**
   * Appends `count` tokens given token-major ([count, kvHeads·headDim]): in the buffers' own element type, or f32
   * (narrowed here when the buffers are fp16; the graph hands fp16 rows over ready).
   */
  append(k: Storage, v: Storage, count: number): void {
    if (k instanceof Float32Array !== v instanceof Float32Array) throw new TypeError('keys and values of one append differ in type');
    if (this.half && k instanceof Float32Array) {
      const narrow = (rows: Storage): Uint16Array => Uint16Array.from(rows.subarray(0, count * this.kvHeads * this.headDim), floatToHalfBits);
      return this.append(narrow(k), narrow(v), count);
    }
    if (!this.half && !(k instanceof Float32Array)) throw new TypeError('fp16 rows given to an f32 cache');
    this.grow(this.count + count);
    const { kvHeads, headDim: hd, cap } = this;
    const D = kvHeads * hd;
    for (let t = 0; t < count; t++) {
      const slot = this.count + t;
      for (let h = 0; h < kvHeads; h++) {
        const src = t * D + h * hd;
        this.v.set(v.subarray(src, src + hd) as never, (h * cap + slot) * hd);
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
    const wide = this.half ? halfBitsToFloat : (x: number): number => x;
    for (let h = 0; h < kvHeads; h++) {
      for (let t = 0; t < count; t++) {
        for (let c = 0; c < hd; c++) v[t * D + h * hd + c] = wide(this.v[(h * cap + t) * hd + c]!);
      }
      for (let c = 0; c < hd; c++) {
        const row = (h * hd + c) * cap;
        for (let t = 0; t < count; t++) k[t * D + h * hd + c] = wide(this.k[row + t]!);
      }
    }
    return { k, v };
  }

  /** The first `count` tokens token-major ([count, kvHeads·headDim]), in the buffers' own element type (copies). */
  tokenMajorRaw(count: number): { k: Storage; v: Storage } {
    const { kvHeads, headDim: hd, cap } = this;
    const D = kvHeads * hd;
    const k = this.half ? new Uint16Array(count * D) : new Float32Array(count * D);
    const v = this.half ? new Uint16Array(count * D) : new Float32Array(count * D);
    for (let h = 0; h < kvHeads; h++) {
      for (let t = 0; t < count; t++) v.set(this.v.subarray((h * cap + t) * hd, (h * cap + t + 1) * hd) as never, t * D + h * hd);
      for (let c = 0; c < hd; c++) {
        const row = (h * hd + c) * cap;
        for (let t = 0; t < count; t++) k[t * D + h * hd + c] = this.k[row + t]!;
      }
    }
    return { k, v };
  }

  /**
   * Whatever attention reads past the held tokens is masked; a buffer far larger than needed is still read whole. A
   * room far larger than needed (a reservation the tokens never filled) is given back too.
   */
  private shrink(): void {
    const fits = capacityFor(this.count);
    if (fits * 2 <= this.room) this.layOut(this.make(fits), this.make(fits), fits);
  }

  /**
   * Lays the held tokens out `cap` slots apart in `k` and `v`: new buffers, or the current ones growing in place
   * (the last row first: every row moves up, onto slots already moved or unused).
   */
  private layOut(k: Storage, v: Storage, cap: number): void {
    const { kvHeads, headDim: hd, cap: old, count } = this;
    for (let row = kvHeads * hd - 1; row >= 0; row--) k.set(this.k.subarray(row * old, row * old + count) as never, row * cap);
    for (let h = kvHeads - 1; h >= 0; h--) v.set(this.v.subarray(h * old * hd, (h * old + count) * hd) as never, h * cap * hd);
    this.k = k;
    this.v = v;
    this.cap = cap;
    this.room = k.length / (kvHeads * hd);
  }

  private make(capacity: number): Storage {
    const n = this.kvHeads * this.headDim * capacity;
    return this.half ? new Uint16Array(n) : new Float32Array(n);
  }
}
