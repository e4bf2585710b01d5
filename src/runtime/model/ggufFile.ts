// Reader for GGUF (llama.cpp's model file: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic,
// version, a typed key/value metadata section, tensor descriptors, then aligned tensor data. The header is parsed
// through a small buffered reader; tensor data is read per tensor with positioned reads, so the file never sits in
// memory twice. A model split by llama-gguf-split (NAME-00001-of-0000N.gguf: the first part holds the metadata,
// every part holds some tensors and split.no/split.count/split.tensors.count) opens from its first part as one file. Written here rather than taken from @huggingface/gguf because every model entry point of the
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
  /** Absolute byte offset of the tensor's data in its file. */
  readonly offset: number;
  /** Which file of a split model holds the data (0 for an unsplit file): an index into GgufFile.parts. */
  readonly part: number;
  readonly byteLength: number;
}

export interface GgufOpenOptions {
  /** Keep the contents of array values (default true). Discovery skips them: a vocabulary is 150k strings. */
  arrays?: boolean;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;

enum ValueType { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }

/** llama.cpp's name for part `no` (1-based) of `count`: PREFIX-0000no-of-0000count.gguf. */
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

export function splitPartPath(first: string, no: number, count: number): string {
  const m = SPLIT_NAME.exec(first);
  const prefix = m ? m[1]! : first.replace(/\.gguf$/i, '');
  return `${prefix}-${String(no).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.gguf`;
}

/** For NAME-0000k-of-0000n.gguf: { no: k, count: n }; undefined for any other name. */
export function splitPartOf(file: string): { no: number; count: number } | undefined {
  const m = SPLIT_NAME.exec(file);
  return m ? { no: Number(m[2]), count: Number(m[3]) } : undefined;
}

export class GgufFile {
  readonly metadata = new Map<string, GgufValue>();
  readonly tensors = new Map<string, GgufTensor>();
  version = 0;
  /** Bytes of all parts together. */
  fileSize = 0;
  /** The files the model is made of: [path] unless it is split. */
  readonly parts: string[] = [];
  private readonly fds: number[] = [];

  /** The first (or only) file; errors about the model as a whole name it. */
  private constructor(readonly path: string) {}

  static open(file: string, options: GgufOpenOptions = {}): GgufFile {
    const gguf = new GgufFile(file);
    const keepArrays = options.arrays ?? true;
    try {
      gguf.parsePart(file, keepArrays);
      const count = gguf.splitKey(gguf.metadata, file, 'split.count') ?? 1;
      const no = gguf.splitKey(gguf.metadata, file, 'split.no') ?? 0;
      if (no !== 0) {
        throw new ModelFormatError(file, `this is part ${no + 1} of ${count} of a split model; open its first part, ${splitPartPath(file, 1, count)}`);
      }
      for (let i = 1; i < count; i++) {
        const part = splitPartPath(file, i + 1, count);
        if (!fs.existsSync(part)) throw new ModelFormatError(file, `part ${i + 1} of ${count} of this split model is missing: ${part} (an interrupted download?)`);
        gguf.parsePart(part, keepArrays, { no: i, count });
      }
      const declared = gguf.splitKey(gguf.metadata, file, 'split.tensors.count');
      if (count > 1 && declared !== undefined && declared !== gguf.tensors.size) {
        throw new ModelFormatError(file, `the split model declares ${declared} tensors but its ${count} parts hold ${gguf.tensors.size}`);
      }
    } catch (err) {
      gguf.close();
      throw err;
    }
    return gguf;
  }

  close(): void {
    for (const fd of this.fds.splice(0)) fs.closeSync(fd);
  }

  private splitKey(metadata: Map<string, GgufValue>, file: string, key: string): number | undefined {
    const v = metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ModelFormatError(file, `metadata "${key}" must be a non-negative integer, got ${String(v)}`);
    return v;
  }

  /** Parses one file's header: the first part's metadata is the model's; every part's tensors join the model's. */
  private parsePart(file: string, keepArrays: boolean, split?: { no: number; count: number }): void {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      throw new ModelFormatError(file, `cannot open (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const part = this.fds.length;
    this.fds.push(fd);
    this.parts.push(file);
    const fail: (what: string) => never = (what) => {
      throw new ModelFormatError(file, what);
    };
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) fail('not a regular file');
    this.fileSize += stat.size;
    const r = new HeaderReader(fd, stat.size, fail);
    if (stat.size < 24 || r.u32() !== MAGIC) fail('not a GGUF file (no "GGUF" magic at the start)');
    const version = r.u32();
    if (version !== 2 && version !== 3) {
      throw new UnsupportedError(file, `GGUF version ${version} is not supported (versions 2 and 3 are)`);
    }
    if (part === 0) this.version = version;
    const metadata = part === 0 ? this.metadata : new Map<string, GgufValue>();
    const tensorCount = r.count('tensor count');
    const kvCount = r.count('metadata count');
    for (let i = 0; i < kvCount; i++) {
      const key = r.string();
      const type = r.u32();
      metadata.set(key, this.readValue(r, type, key, keepArrays, fail));
    }
    if (split && (this.splitKey(metadata, file, 'split.no') !== split.no || this.splitKey(metadata, file, 'split.count') !== split.count)) {
      fail(`expected part ${split.no + 1} of ${split.count}, but its split.no / split.count say otherwise`);
    }
    const descriptors: Array<{ name: string; dims: number[]; typeId: number; relative: number }> = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = r.string();
      const nDims = r.u32();
      if (nDims > 4) fail(`tensor "${name}": ${nDims} dimensions (GGUF allows at most 4); the file is corrupt`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(r.count(`dimension ${d} of tensor "${name}"`));
      const typeId = r.u32();
      const relative = r.count(`data offset of tensor "${name}"`);
      descriptors.push({ name, dims, typeId, relative });
    }
    const alignment = metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT;
    if (typeof alignment !== 'number' || !Number.isInteger(alignment) || alignment <= 0) fail(`general.alignment must be a positive integer, got ${String(alignment)}`);
    const dataStart = Math.ceil(r.position / alignment) * alignment;
    for (const { name, dims, typeId, relative } of descriptors) {
      const type = GGML_TYPES.get(typeId);
      if (!type) fail(`tensor "${name}" has unknown ggml type id ${typeId}`);
      const elements = dims.reduce((a, b) => a * b, 1);
      if (dims[0]! % type.blockSize !== 0) fail(`tensor "${name}": row length ${dims[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`);
      const byteLength = (elements / type.blockSize) * type.bytesPerBlock;
      const offset = dataStart + relative;
      if (offset + byteLength > stat.size) {
        fail(`truncated: tensor "${name}" (${type.name}, [${dims.join(', ')}]) needs bytes ${offset}..${offset + byteLength} but the file has ${stat.size}`);
      }
      if (this.tensors.has(name)) fail(`tensor "${name}" is described twice`);
      this.tensors.set(name, { name, type, dims, shape: [...dims].reverse(), offset, byteLength, part });
    }
  }

  private readValue(r: HeaderReader, type: number, key: string, keepArrays: boolean, fail: (what: string) => never): GgufValue {
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
        if (itemType === ValueType.ARRAY) fail(`metadata "${key}": nested arrays are not supported`);
        const items: GgufValue[] = [];
        for (let i = 0; i < count; i++) {
          const v = this.readValue(r, itemType, key, keepArrays, fail);
          if (keepArrays) items.push(v);
        }
        return items;
      }
      default:
        return fail(`metadata "${key}" has unknown value type ${type}; the file is corrupt`);
    }
  }

  /** Reads a tensor's raw bytes (still quantised), or `length` of them from byte `from` of its data. */
  readBytes(tensor: GgufTensor, from = 0, length = tensor.byteLength - from): Uint8Array {
    if (from < 0 || length < 0 || from + length > tensor.byteLength) throw new RangeError(`tensor "${tensor.name}": bytes [${from}, ${from + length}) outside its ${tensor.byteLength}`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < out.length) {
      const n = fs.readSync(this.fds[tensor.part]!, out, done, out.length - done, tensor.offset + from + done);
      if (n === 0) throw new ModelFormatError(this.parts[tensor.part]!, `tensor "${tensor.name}": file ended while reading its data`);
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
    if (!ok(v)) throw new ModelFormatError(this.path, `metadata "${key}" must be a ${what}, got ${typeof v}`);
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
