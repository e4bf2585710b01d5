// Reader for GGUF (llama.cpp's model file: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic,
// version, a typed key/value metadata section, tensor descriptors, then aligned tensor data. The header is parsed
// through a small buffered reader; tensor data is read per tensor with positioned reads, so the file never sits in
// memory twice. Written here rather than taken from @huggingface/gguf because every model entry point of the
// runtime is synchronous (config, weights, tokenizer) and that library's reader is async.
import * as fs from 'node:fs';
import { ModelFormatError, UnsupportedError } from '../errors';
import { GGML_TYPES, type GgmlTypeInfo } from './ggmlTypes';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensor {
  readonly name: string;
  readonly type: GgmlTypeInfo;
  /** ggml order: dims[0] is the innermost (contiguous) dimension. */
  readonly dims: readonly number[];
  /** Row-major order as PyTorch and safetensors write it: dims reversed. */
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface GgufOpenOptions {
  /** Keep the contents of array values (default true). Discovery skips them: a vocabulary is 150k strings. */
  arrays?: boolean;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;

enum ValueType { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }

export class GgufFile {
  readonly metadata = new Map<string, GgufValue>();
  readonly tensors = new Map<string, GgufTensor>();
  version = 0;
  fileSize = 0;

  private constructor(readonly path: string, private readonly fd: number) {}

  static open(file: string, options: GgufOpenOptions = {}): GgufFile {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      throw new ModelFormatError(file, `cannot open (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const gguf = new GgufFile(file, fd);
    try {
      gguf.parse(options.arrays ?? true);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return gguf;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private fail(what: string): never {
    throw new ModelFormatError(this.path, what);
  }

  private parse(keepArrays: boolean): void {
    const stat = fs.fstatSync(this.fd);
    if (!stat.isFile()) this.fail('not a regular file');
    this.fileSize = stat.size;
    const r = new HeaderReader(this.fd, this.fileSize, (what) => this.fail(what));
    if (this.fileSize < 24 || r.u32() !== MAGIC) this.fail('not a GGUF file (no "GGUF" magic at the start)');
    this.version = r.u32();
    if (this.version !== 2 && this.version !== 3) {
      throw new UnsupportedError(this.path, `GGUF version ${this.version} is not supported (versions 2 and 3 are)`);
    }
    const tensorCount = r.count('tensor count');
    const kvCount = r.count('metadata count');
    for (let i = 0; i < kvCount; i++) {
      const key = r.string();
      const type = r.u32();
      this.metadata.set(key, this.readValue(r, type, key, keepArrays));
    }
    const descriptors: Array<{ name: string; dims: number[]; typeId: number; relative: number }> = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = r.string();
      const nDims = r.u32();
      if (nDims > 4) this.fail(`tensor "${name}": ${nDims} dimensions (GGUF allows at most 4); the file is corrupt`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(r.count(`dimension ${d} of tensor "${name}"`));
      const typeId = r.u32();
      const relative = r.count(`data offset of tensor "${name}"`);
      descriptors.push({ name, dims, typeId, relative });
    }
    const alignment = this.metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT;
    if (typeof alignment !== 'number' || !Number.isInteger(alignment) || alignment <= 0) this.fail(`general.alignment must be a positive integer, got ${String(alignment)}`);
    const dataStart = Math.ceil(r.position / alignment) * alignment;
    for (const { name, dims, typeId, relative } of descriptors) {
      const type = GGML_TYPES.get(typeId);
      if (!type) this.fail(`tensor "${name}" has unknown ggml type id ${typeId}`);
      const elements = dims.reduce((a, b) => a * b, 1);
      if (dims[0]! % type.blockSize !== 0) this.fail(`tensor "${name}": row length ${dims[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`);
      const byteLength = (elements / type.blockSize) * type.bytesPerBlock;
      const offset = dataStart + relative;
      if (offset + byteLength > this.fileSize) {
        this.fail(`truncated: tensor "${name}" (${type.name}, [${dims.join(', ')}]) needs bytes ${offset}..${offset + byteLength} but the file has ${this.fileSize}`);
      }
      if (this.tensors.has(name)) this.fail(`tensor "${name}" is described twice`);
      this.tensors.set(name, { name, type, dims, shape: [...dims].reverse(), offset, byteLength });
    }
  }

  private readValue(r: HeaderReader, type: number, key: string, keepArrays: boolean): GgufValue {
    switch (type) {
      case ValueType.U8: return r.u8();
      case ValueType.I8: return (r.u8() << 24) >> 24;
      case ValueType.U16: return r.u16();
      case ValueType.I16: return (r.u16() << 16) >> 16;
      case ValueType.U32: return r.u32();
      case ValueType.I32: return r.u32() | 0;
      case ValueType.F32: return r.f32();
      case ValueType.BOOL: return r.u8() !== 0;
      case ValueType.STRING: return r.string();
      case ValueType.U64: return safeNumber(r.u64());
      case ValueType.I64: return safeNumber(BigInt.asIntN(64, r.u64()));
      case ValueType.F64: return r.f64();
      case ValueType.ARRAY: {
        const itemType = r.u32();
        const count = r.count(`length of array "${key}"`);
        if (itemType === ValueType.ARRAY) this.fail(`metadata "${key}": nested arrays are not supported`);
        const items: GgufValue[] = [];
        for (let i = 0; i < count; i++) {
          const v = this.readValue(r, itemType, key, keepArrays);
          if (keepArrays) items.push(v);
        }
        return items;
      }
      default:
        this.fail(`metadata "${key}" has unknown value type ${type}; the file is corrupt`);
    }
  }

  /** Reads a tensor's raw bytes (still quantised), or `length` of them from byte `from` of its data. */
  readBytes(tensor: GgufTensor, from = 0, length = tensor.byteLength - from): Uint8Array {
    if (from < 0 || length < 0 || from + length > tensor.byteLength) throw new RangeError(`tensor "${tensor.name}": bytes [${from}, ${from + length}) outside its ${tensor.byteLength}`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < out.length) {
      const n = fs.readSync(this.fd, out, done, out.length - done, tensor.offset + from + done);
      if (n === 0) this.fail(`tensor "${tensor.name}": file ended while reading its data`);
      done += n;
    }
    return out;
  }

  /** A metadata value, checked to be a string / number / boolean / array; undefined when absent. */
  string(key: string): string | undefined {
    return this.typed(key, 'string', (v) => typeof v === 'string') as string | undefined;
  }

  number(key: string): number | undefined {
    return this.typed(key, 'number', (v) => typeof v === 'number') as number | undefined;
  }

  boolean(key: string): boolean | undefined {
    return this.typed(key, 'boolean', (v) => typeof v === 'boolean') as boolean | undefined;
  }

  array(key: string): GgufValue[] | undefined {
    return this.typed(key, 'array', (v) => Array.isArray(v)) as GgufValue[] | undefined;
  }

  private typed(key: string, what: string, ok: (v: GgufValue) => boolean): GgufValue | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (!ok(v)) this.fail(`metadata "${key}" must be a ${what}, got ${typeof v}`);
    return v;
  }
}

/** 64-bit integers beyond 2^53 only appear in corrupt files (counts, sizes); they stay bigints to be rejected. */
function safeNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/** Sequential little-endian reads over a file descriptor through a 1 MiB window. */
class HeaderReader {
  private buffer = Buffer.alloc(1 << 20);
  private start = 0; // file offset of buffer[0]
  private end = 0; // file offset just past the valid bytes
  position = 0;

  constructor(private readonly fd: number, private readonly size: number, private readonly fail: (what: string) => never) {}

  private need(n: number): number {
    if (this.position + n > this.size) this.fail(`truncated: the header runs past the end of the file (${this.size} bytes)`);
    if (this.position + n > this.end) {
      if (n > this.buffer.length) this.buffer = Buffer.alloc(n);
      this.start = this.position;
      this.end = this.start + fs.readSync(this.fd, this.buffer, 0, Math.min(this.buffer.length, this.size - this.start), this.start);
    }
    const at = this.position - this.start;
    this.position += n;
    return at;
  }

  u8(): number { return this.buffer.readUInt8(this.need(1)); }
  u16(): number { return this.buffer.readUInt16LE(this.need(2)); }
  u32(): number { return this.buffer.readUInt32LE(this.need(4)); }
  u64(): bigint { return this.buffer.readBigUInt64LE(this.need(8)); }
  f32(): number { return this.buffer.readFloatLE(this.need(4)); }
  f64(): number { return this.buffer.readDoubleLE(this.need(8)); }

  /** A u64 count or size that must fit the file: anything larger means corruption, not a huge model. */
  count(what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} ${v} is impossible; the file is corrupt`);
    return Number(v);
  }

  string(): string {
    const length = this.count('string length');
    if (length > this.size - this.position) this.fail(`truncated: a ${length}-byte string runs past the end of the file (${this.size} bytes)`);
    const at = this.need(length);
    return this.buffer.toString('utf8', at, at + length);
  }
}
