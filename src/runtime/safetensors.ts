// Reader for the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length, a JSON header, then raw little-endian tensor data. Tensors are read one at a time with positioned
// reads, so a checkpoint never sits in memory twice (and never whole, unless the caller keeps every tensor).
import * as fs from 'node:fs';
import { ModelFormatError, UnsupportedError } from './errors';
import { halfBitsToFloat } from './half';

export type DType = 'F32' | 'F16' | 'BF16';
const ITEM_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};

  private constructor(readonly path: string, private readonly fd: number) {}

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      throw new ModelFormatError(path, `cannot open (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const file = new SafetensorsFile(path, fd);
    try {
      file.parseHeader();
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return file;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private fail(what: string): never {
    throw new ModelFormatError(this.path, what);
  }

  private parseHeader(): void {
    const stat = fs.fstatSync(this.fd);
    if (!stat.isFile()) this.fail('not a regular file');
    const fileSize = stat.size;
    if (fileSize < 8) this.fail(`not a safetensors file: ${fileSize} bytes, shorter than the 8-byte header length`);
    const lengthBytes = Buffer.alloc(8);
    fs.readSync(this.fd, lengthBytes, 0, 8, 0);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength > fileSize - 8) {
      this.fail(`truncated or corrupt: header length ${headerLength} runs past the end of the file (${fileSize} bytes)`);
    }
    if (headerLength > MAX_HEADER_BYTES) this.fail(`corrupt: header length ${headerLength} is implausibly large`);
    const headerBytes = Buffer.alloc(headerLength);
    fs.readSync(this.fd, headerBytes, 0, headerLength, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch (err) {
      this.fail(`corrupt header: ${(err as Error).message}`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) this.fail('corrupt header: not a JSON object');
    const dataStart = 8 + headerLength;
    const dataSize = fileSize - dataStart;
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        for (const [key, value] of Object.entries((entry ?? {}) as Record<string, unknown>)) {
          if (typeof value !== 'string') this.fail(`__metadata__.${key} must be a string`);
          this.metadata[key] = value;
        }
        continue;
      }
      this.tensors.set(name, this.parseEntry(name, entry, dataStart, dataSize));
    }
  }

  private parseEntry(name: string, entry: unknown, dataStart: number, dataSize: number): TensorInfo {
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) this.fail(`tensor "${name}": entry is not an object`);
    if (typeof e.dtype !== 'string' || !Object.hasOwn(ITEM_SIZE, e.dtype)) this.fail(`tensor "${name}": unknown dtype ${JSON.stringify(e.dtype)}`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      this.fail(`tensor "${name}": shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      this.fail(`tensor "${name}": data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin || end > dataSize) {
      this.fail(`tensor "${name}": data_offsets [${begin}, ${end}] lie outside the data section (${dataSize} bytes); the file is truncated or corrupt`);
    }
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = elements * ITEM_SIZE[e.dtype]!;
    if (end - begin !== expected) {
      this.fail(`tensor "${name}": ${end - begin} bytes of data for shape [${(shape as number[]).join(', ')}] ${e.dtype}, which needs ${expected}`);
    }
    return { name, dtype: e.dtype, shape: shape as number[], offset: dataStart + begin, byteLength: expected };
  }

  /** Reads a tensor's raw bytes, or `length` of them from byte `from` of its data. */
  readBytes(info: TensorInfo, from = 0, length = info.byteLength - from): Uint8Array {
    if (from < 0 || length < 0 || from + length > info.byteLength) throw new RangeError(`tensor "${info.name}": bytes [${from}, ${from + length}) outside its ${info.byteLength}`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < out.length) {
      const n = fs.readSync(this.fd, out, done, out.length - done, info.offset + from + done);
      if (n === 0) this.fail(`tensor "${info.name}": file ended while reading its data`);
      done += n;
    }
    return out;
  }

  /** Reads a float tensor converted to float32, checking dtype and (optionally) shape. */
  readFloat32(name: string, shape?: readonly number[]): Float32Array {
    const info = this.tensors.get(name);
    if (!info) this.fail(`missing tensor "${name}"`);
    if (shape && (shape.length !== info.shape.length || shape.some((d, i) => d !== info.shape[i]))) {
      this.fail(`tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new UnsupportedError(this.path, `tensor "${name}" has dtype ${info.dtype}; only F32, F16 and BF16 weights are supported`);
    }
    return toFloat32(this.readBytes(info), info.dtype);
  }
}

/** Converts little-endian F32/F16/BF16 bytes to a fresh Float32Array. */
export function toFloat32(bytes: Uint8Array, dtype: DType): Float32Array {
  const count = bytes.byteLength / (dtype === 'F32' ? 4 : 2);
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const halves = new Uint16Array(count);
  new Uint8Array(halves.buffer).set(bytes);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = halves[i]! << 16;
  } else {
    for (let i = 0; i < count; i++) out[i] = halfBitsToFloat(halves[i]!);
  }
  return out;
}

