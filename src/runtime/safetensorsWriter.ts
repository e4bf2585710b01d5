// Writes safetensors files tensor by tensor: the header is computed from shapes first, and each tensor's bytes
// are produced only when written, so a large file never has to sit in memory whole.
import * as fs from 'node:fs';

export interface TensorToWrite {
  dtype: 'F32' | 'F16' | 'BF16';
  shape: readonly number[];
  /** The tensor's little-endian bytes, produced when the tensor is written. */
  data: Uint8Array | (() => Uint8Array);
}

const ITEM = { F32: 4, F16: 2, BF16: 2 } as const;

/** Writes atomically: to a temporary name first, renamed over `file` once complete. */
export function writeSafetensors(file: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * ITEM[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const partial = `${file}.partial-${process.pid}`;
  const fd = fs.openSync(partial, 'w');
  try {
    fs.writeSync(fd, length);
    fs.writeSync(fd, json);
    for (const [name, t] of Object.entries(tensors)) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      const expected = (header[name] as { data_offsets: [number, number] }).data_offsets;
      if (data.byteLength !== expected[1] - expected[0]) throw new Error(`tensor ${name}: ${data.byteLength} bytes for shape [${t.shape.join(', ')}] ${t.dtype}`);
      fs.writeSync(fd, data);
    }
    fs.closeSync(fd);
    fs.renameSync(partial, file);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(partial, { force: true });
    throw err;
  }
}

export function float32Bytes(values: ArrayLike<number>): Uint8Array {
  const a = Float32Array.from(values);
  return new Uint8Array(a.buffer);
}

/** float32 -> bfloat16 bytes, rounding to nearest even. */
export function bfloat16Bytes(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i]!;
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}
