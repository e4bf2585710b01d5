// Writes GGUF v3 files (llama.cpp's model format): typed metadata, then tensor infos, then the aligned tensor
// data, streamed tensor by tensor so a model is never held whole in memory. Tensor element types written: F32,
// F16 and Q8_0 (blocks of 32: an fp16 scale and 32 int8 codes). llama.cpp reads what this writes (test/runtime/gguf.test.ts).
import * as fs from 'node:fs';
import { floatToHalfBits } from '../half';

/** ggml_type ids of the element types this writer produces. */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlType = keyof typeof GGML_TYPE;

const enum ValueType { UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9 }

export type MetadataValue =
  | { type: 'u32' | 'i32' | 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'i32[]'; value: ArrayLike<number> }
  | { type: 'string[]'; value: readonly string[] };

export interface GgufTensor {
  name: string;
  /** Row-major shape as in safetensors ([rows, cols]); GGUF stores it innermost first. */
  shape: readonly number[];
  type: GgmlType;
  /** The values, produced only when the tensor is written. */
  values: () => Float32Array;
}

export const GGUF_ALIGNMENT = 32;
const Q8_0_BLOCK = 32;

/** Bytes of `count` values (the innermost dimension) stored as `type`. */
export function ggmlBytes(type: GgmlType, count: number): number {
  if (type === 'F32') return count * 4;
  if (type === 'F16') return count * 2;
  if (count % Q8_0_BLOCK !== 0) throw new RangeError(`Q8_0 rows must be a multiple of ${Q8_0_BLOCK} values, got ${count}`);
  return (count / Q8_0_BLOCK) * 34;
}

export function encodeTensor(type: GgmlType, values: Float32Array): Uint8Array {
  if (type === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (type === 'F16') {
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = floatToHalfBits(values[i]!);
    return new Uint8Array(out.buffer);
  }
  return encodeQ8_0(values);
}

/** Q8_0 as ggml's reference quantiser: d = max|x| / 127 (stored fp16), q = round(x / d). */
export function encodeQ8_0(values: Float32Array): Uint8Array {
  const blocks = ggmlBytes('Q8_0', values.length) / 34;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let maxAbs = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) maxAbs = Math.max(maxAbs, Math.abs(values[b * Q8_0_BLOCK + i]!));
    const d = maxAbs / 127;
    const inverse = d === 0 ? 0 : 1 / d;
    view.setUint16(b * 34, floatToHalfBits(d), true);
    for (let i = 0; i < Q8_0_BLOCK; i++) view.setInt8(b * 34 + 2 + i, Math.round(values[b * Q8_0_BLOCK + i]! * inverse));
  }
  return out;
}

class Bytes {
  private readonly parts: Buffer[] = [];
  length = 0;
  private push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v: number): void { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v: number): void { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  string(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  raw(b: Buffer): void { this.push(b); }
  finish(): Buffer { return Buffer.concat(this.parts); }
}

function writeValue(out: Bytes, v: MetadataValue): void {
  switch (v.type) {
    case 'u32': out.u32(ValueType.UINT32); out.u32(v.value); break;
    case 'i32': out.u32(ValueType.INT32); out.i32(v.value); break;
    case 'f32': out.u32(ValueType.FLOAT32); out.f32(v.value); break;
    case 'bool': out.u32(ValueType.BOOL); out.raw(Buffer.from([v.value ? 1 : 0])); break;
    case 'string': out.u32(ValueType.STRING); out.string(v.value); break;
    case 'i32[]':
      out.u32(ValueType.ARRAY); out.u32(ValueType.INT32); out.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) out.i32(v.value[i]!);
      break;
    case 'string[]':
      out.u32(ValueType.ARRAY); out.u32(ValueType.STRING); out.u64(v.value.length);
      for (const s of v.value) out.string(s);
      break;
  }
}

const pad = (n: number): number => (GGUF_ALIGNMENT - (n % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;

export function writeGguf(file: string, metadata: Record<string, MetadataValue>, tensors: readonly GgufTensor[]): void {
  const head = new Bytes();
  head.raw(Buffer.from('GGUF', 'latin1'));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    head.string(key);
    writeValue(head, value);
  }
  let offset = 0;
  const sizes = tensors.map((t) => {
    const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    return rows * ggmlBytes(t.type, t.shape[t.shape.length - 1]!);
  });
  tensors.forEach((t, i) => {
    head.string(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d);
    head.u32(GGML_TYPE[t.type]);
    head.u64(offset);
    offset += sizes[i]! + pad(sizes[i]!);
  });
  const fd = fs.openSync(file, 'w');
  try {
    const header = head.finish();
    fs.writeSync(fd, header);
    fs.writeSync(fd, Buffer.alloc(pad(header.length)));
    tensors.forEach((t, i) => {
      const values = t.values();
      const expected = t.shape.reduce((a, b) => a * b, 1);
      if (values.length !== expected) throw new RangeError(`tensor ${t.name}: ${values.length} values for shape [${t.shape.join(', ')}]`);
      const bytes = encodeTensor(t.type, values);
      if (bytes.byteLength !== sizes[i]) throw new Error(`tensor ${t.name}: encoded ${bytes.byteLength} bytes, expected ${sizes[i]}`);
      fs.writeSync(fd, bytes);
      fs.writeSync(fd, Buffer.alloc(pad(bytes.byteLength)));
    });
  } finally {
    fs.closeSync(fd);
  }
}
