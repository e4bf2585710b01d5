// Reads a safetensors file back as raw tensors, so tests can rewrite it with one thing changed or damaged.
import * as fs from 'node:fs';
import type { TensorToWrite } from '../../src/runtime/safetensorsWriter';

export function readRaw(file: string): { tensors: Record<string, TensorToWrite & { data: Uint8Array }>; metadata: Record<string, string> | undefined } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: 'F32' | 'F16' | 'BF16'; shape: number[]; data_offsets: [number, number] }>;
  const tensors: Record<string, TensorToWrite & { data: Uint8Array }> = {};
  let metadata: Record<string, string> | undefined;
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = e as unknown as Record<string, string>;
      continue;
    }
    tensors[name] = { dtype: e.dtype, shape: e.shape, data: new Uint8Array(buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1])) };
  }
  return { tensors, metadata };
}

/** Rewrites the JSON header of a safetensors file in place (keeping the data), to forge a damaged header. */
export function rewriteHeader(file: string, change: (header: Record<string, any>) => void): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  change(header);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, buf.subarray(8 + n)]));
}
