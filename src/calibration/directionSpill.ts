// Candidate directions wait on disk between the eigendecompositions and the rank allocation: the ranks depend on
// every layer's spectrum, and holding every layer's D × D directions (4 GB in float32 for Llama-2-7B) would
// break compress's memory bound. Written once as float32, read back only as the first r rows.
import * as fs from 'node:fs';

export interface SpilledDirections {
  readonly size: number;
  readonly offset: number;
}

export class DirectionSpill {
  private offset = 0;

  private constructor(readonly file: string, private readonly fd: number) {}

  static create(file: string): DirectionSpill {
    return new DirectionSpill(file, fs.openSync(file, 'w+'));
  }

  /** Stores the rows of a row-major [size, size] set of directions. */
  write(rows: Float64Array, size: number): SpilledDirections {
    const bytes = new Uint8Array(Float32Array.from(rows.subarray(0, size * size)).buffer);
    fs.writeSync(this.fd, bytes, 0, bytes.length, this.offset);
    const spilled = { size, offset: this.offset };
    this.offset += bytes.length;
    return spilled;
  }

  /** The first `count` rows, row-major [count, size]. */
  read(spilled: SpilledDirections, count: number): Float64Array {
    const bytes = Buffer.alloc(count * spilled.size * 4);
    const read = fs.readSync(this.fd, bytes, 0, bytes.length, spilled.offset);
    if (read !== bytes.length) throw new Error(`${this.file}: short read (${read} of ${bytes.length} bytes)`);
    return Float64Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, count * spilled.size));
  }

  /** Closes and deletes the file. */
  dispose(): void {
    fs.closeSync(this.fd);
    fs.rmSync(this.file, { force: true });
  }
}
