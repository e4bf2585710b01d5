// A row-major matrix (float32, or float16 bits) that grows by rows, handing out views of its filled part without
// copying (onnxruntime reads the view in place).

type Storage = Float32Array | Uint16Array;

export class GrowableRows<A extends Storage = Float32Array> {
  private data: A;
  private count = 0;

  constructor(readonly width: number, initialRows = 64, private readonly make: (length: number) => A = ((n: number) => new Float32Array(n)) as unknown as (length: number) => A) {
    this.data = make(Math.max(1, initialRows) * width);
  }

  /** Rows of float16 bit patterns (what a 16-bit compressed branch stores). */
  static half(width: number): GrowableRows<Uint16Array> {
    return new GrowableRows(width, 64, (n) => new Uint16Array(n));
  }

  get rows(): number {
    return this.count;
  }

  get capacityBytes(): number {
    return this.data.byteLength;
  }

  /** Bytes of the rows held (what the cache accounts for; spare capacity is allocator slack). */
  get bytes(): number {
    return this.count * this.width * this.data.BYTES_PER_ELEMENT;
  }

  view(): A {
    return this.data.subarray(0, this.count * this.width) as A;
  }

  append(rows: A, count: number): void {
    this.reserve(this.count + count);
    this.data.set(rows.subarray(0, count * this.width) as never, this.count * this.width);
    this.count += count;
  }

  /** Removes the first `count` rows. */
  dropFront(count: number): void {
    this.data.copyWithin(0, count * this.width, this.count * this.width);
    this.count -= count;
  }

  truncate(rows: number): void {
    this.count = Math.min(this.count, rows);
  }

  /** Rows [from, to) as a view. */
  slice(from: number, to: number): A {
    return this.data.subarray(from * this.width, to * this.width) as A;
  }

  /**
   * Makes room for `rows` rows, keeping those held: the one place the buffer grows, to at least twice its size (so
   * rows appended one at a time are copied a bounded number of times). A caller that knows the final count reserves
   * it once: a buffer grown step by step leaves each smaller one freed, and glibc keeps such freed memory in the process.
   */
  reserve(rows: number): void {
    if (rows * this.width <= this.data.length) return;
    const next = this.make(Math.max(rows, (this.data.length / this.width) * 2) * this.width);
    next.set(this.view() as never);
    this.data = next;
  }
}
