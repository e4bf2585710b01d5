// Dequantisation throughput of the GGUF loader, per ggml type, against the safetensors path's F16 -> F32
// conversion (toFloat32) in the same run, on one 4096 x 4096 tensor of random blocks (scales set to a normal f16
// so no value is NaN). Prints a table with the time a 7.6B-parameter model (Qwen2.5-7B) would take to
// dequantise at that rate, and writes bench/results/gguf-dequant.json.
//   node out/bench/ggufDequant.js [--repeat 3] [--out FILE]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { dequantise } from '../src/runtime/model/ggmlDequant';
import { ggmlType } from '../src/runtime/model/ggmlTypes';
import { toFloat32 } from '../src/runtime/safetensors';

const ELEMENTS = 4096 * 4096;
const PARAMETERS_7B = 7.6e9;
// Where each type keeps its f16 scales inside a block (byte offsets).
const SCALE_OFFSETS: Record<string, number[]> = { Q8_0: [0], Q4_0: [0], Q5_0: [0], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], F16: [], BF16: [], F32: [] };

function randomBlocks(typeName: string): Uint8Array {
  const type = ggmlType(typeName);
  const blocks = ELEMENTS / type.blockSize;
  const bytes = new Uint8Array(blocks * type.bytesPerBlock);
  let seed = 12345;
  for (let i = 0; i < bytes.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    bytes[i] = seed >>> 24;
  }
  const fixFloats = (): void => {
    if (typeName === 'F16') for (let i = 1; i < bytes.length; i += 2) bytes[i] = (bytes[i]! & 0x80) | 0x30 | (bytes[i]! & 0x07);
    if (typeName === 'BF16') for (let i = 1; i < bytes.length; i += 2) bytes[i] = (bytes[i]! & 0x80) | 0x3c;
    if (typeName === 'F32') for (let i = 3; i < bytes.length; i += 4) bytes[i] = (bytes[i]! & 0x80) | 0x3c;
  };
  fixFloats();
  for (let b = 0; b < blocks; b++) {
    for (const o of SCALE_OFFSETS[typeName]!) {
      bytes[b * type.bytesPerBlock + o] = 0x66;
      bytes[b * type.bytesPerBlock + o + 1] = 0x26; // f16 ~0.0375
    }
  }
  return bytes;
}

function timeMs(fn: () => void, repeat: number): number {
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

function main(): void {
  const { values } = parseArgs({ options: { repeat: { type: 'string', default: '3' }, out: { type: 'string' } } });
  const repeat = Number(values.repeat);
  const root = path.resolve(__dirname, '..', '..');
  const outFile = values.out ?? path.join(root, 'bench', 'results', 'gguf-dequant.json');
  const rows: Array<{ path: string; type: string; ms: number; melements_s: number; s_for_7b: number; bytes_per_weight: number }> = [];
  const baseline = randomBlocks('F16');
  const add = (label: string, type: string, ms: number, bytes: number): void => {
    rows.push({ path: label, type, ms, melements_s: ELEMENTS / ms / 1e3, s_for_7b: (PARAMETERS_7B / ELEMENTS) * ms / 1e3, bytes_per_weight: bytes / ELEMENTS });
  };
  // Interleaved: the baseline before each candidate, so load on the shared machine hits both alike.
  for (const type of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q5_K', 'Q6_K']) {
    const src = randomBlocks(type);
    add('safetensors toFloat32 (baseline)', 'F16', timeMs(() => toFloat32(baseline, 'F16'), repeat), baseline.length);
    add('gguf dequantise', type, timeMs(() => dequantise(ggmlType(type), src, ELEMENTS), repeat), src.length);
  }
  console.log(`dequantise ${ELEMENTS} elements (4096 x 4096), median of ${repeat}`);
  console.table(rows.map((r) => ({ ...r, ms: r.ms.toFixed(1), melements_s: r.melements_s.toFixed(0), s_for_7b: r.s_for_7b.toFixed(1), bytes_per_weight: r.bytes_per_weight.toFixed(4) })));
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify({ elements: ELEMENTS, repeat, node: process.version, rows }, null, 2)}\n`);
  console.log(`wrote ${outFile}`);
}

main();
