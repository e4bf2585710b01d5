// A row-major float32 matrix that grows by rows, handing out views of its filled part without copying
// (onnxruntime reads the view in place).

export class GrowableRows {
  private data: Float32Array;
  private count = 0;

  constructor(readonly width: number, initialRows = 64) {
    this.data = new Float32Array(Math.max(1, initialRows) * width);
  }

  get rows(): number {
    return this.count;
  }

  get capacityBytes(): number {
    return this.data.byteLength;
  }

  /** Bytes of the rows held (what the cache accounts for; spare capacity is allocator slack). */
  get bytes(): number {
    return this.count * this.width * 4;
  }

  view(): Float32Array {
    return this.data.subarray(0, this.count * this.width);
  }

  append(rows: Float32Array, count: number): void {
    this.reserve(this.count + count);
    this.data.set(rows.subarray(0, count * this.width), this.count * this.width);
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
  slice(from: number, to: number): Float32Array {
    return this.data.subarray(from * this.width, to * this.width);
  }

  private reserve(rows: number): void {
    if (rows * this.width <= this.data.length) return;
    const next = new Float32Array(Math.max(rows, (this.data.length / this.width) * 2) * this.width);
    next.set(this.view());
    this.data = next;
  }
}
