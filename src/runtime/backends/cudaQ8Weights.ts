// The CUDA engine's 8-bit weights (`--weights q8`): which tensors take them, their device layout, and how many
// bytes they hold. The quantiser is the CPU engine's (src/runtime/onnx/blockQuantizer.ts, one home): a Q8_0 GGUF
// tensor arrives as its own blocks, any other tensor is quantised at load, row batch by row batch, one tensor at
// a time. The device layout (native/src/kernels/q8Layout.h) is those blocks with the implicit zero point 128
// taken out (code ^ 0x80 = the signed int8), so both engines compute with the same numbers.
import { RuntimeError } from '../errors';
import type { WeightFormat } from '../model/weightFormat';
import type { ModelWeights } from '../model/weights';
import { type BlockQuantised, quantiseBlockwise } from '../onnx/blockQuantizer';
import type { DeviceModelShape } from './cudaMemoryPlan';
import type { Q8WeightArrays } from './nativeAddon';

export type CudaWeightFormat = 'bf16' | 'q8';

export const Q8_BLOCK = 32;
/** The bf16 scratch the prefill path dequantises weight rows into, at most (q8Layout.h kQ8TileBytes). */
export const Q8_TILE_BYTES = 64 * 1024 ** 2;

/**
 * The CUDA engine's format for the runtime's weight option: q8 as asked; f32 and no option mean its unquantised
 * form, bf16 (q8 is not yet the CUDA default: its kernels have not run on a GPU); q4 is refused.
 */
export function cudaWeightFormat(option: WeightFormat | undefined): CudaWeightFormat {
  if (option === 'q4') throw new RuntimeError('UNSUPPORTED', 'the CUDA engine holds weights in bf16 or q8 (--weights q8), not q4');
  return option === 'q8' ? 'q8' : 'bf16';
}

/** The CPU engine's 8-bit blocks in the device layout. Exact: same codes (re-centred), same f32 scales. */
export function deviceQ8(blocks: BlockQuantised): Q8WeightArrays {
  if (blocks.bits !== 8 || blocks.blockSize !== Q8_BLOCK) throw new RangeError(`the CUDA engine takes 8-bit blocks of ${Q8_BLOCK}, got ${blocks.bits}-bit blocks of ${blocks.blockSize}`);
  const codes = new Int8Array(blocks.codes.length);
  for (let i = 0; i < codes.length; i++) codes[i] = (blocks.codes[i]! ^ 0x80) << 24 >> 24;
  return { codes, scales: blocks.scales, n: blocks.n, k: blocks.k };
}

/** A linear weight [n, k] of the checkpoint in the device's q8 layout: the file's Q8_0 blocks, else quantised here. */
export function readDeviceQ8(weights: ModelWeights, name: string, n: number, k: number, rowsPerRead = 256): Q8WeightArrays {
  const stored = weights.readQ8Blocks(name, [n, k]);
  if (stored) return deviceQ8(stored);
  let first = 0;
  let rows: Float32Array = new Float32Array(0);
  const row = (r: number): Float32Array => {
    if (r < first || r >= first + rows.length / k) {
      first = r - (r % rowsPerRead);
      rows = weights.readRows(name, first, Math.min(rowsPerRead, n - first));
    }
    return rows.subarray((r - first) * k, (r - first + 1) * k);
  };
  return deviceQ8(quantiseBlockwise(row, n, k, 8, Q8_BLOCK));
}

/** Device bytes of a q8 weight [n, k]: int8 codes (rows padded to whole blocks) and one f32 scale per block. */
export function q8Bytes(n: number, k: number): number {
  const blocks = n * Math.ceil(k / Q8_BLOCK);
  return blocks * Q8_BLOCK + blocks * 4;
}

/**
 * Device bytes of the weights with --weights q8 (native/src/engine/deviceEngine.cc, Allocate): linear layers and an
 * untied output head as q8, the embedding and norms bf16, plus the prefill tile that q8 weights need (the largest
 * weight's bf16 rows, at most Q8_TILE_BYTES).
 */
export function deviceQ8WeightBytes(s: DeviceModelShape): number {
  const linears: [number, number][] = [[s.qDim + 2 * s.kvDim, s.hidden], [s.hidden, s.qDim], [2 * s.intermediate, s.hidden], [s.hidden, s.intermediate]];
  const perLayer = 2 * s.hidden * 2 + linears.reduce((sum, [n, k]) => sum + q8Bytes(n, k), 0);
  const head = s.tiedEmbeddings ? 0 : q8Bytes(s.vocab, s.hidden);
  const largest = Math.max(...linears.map(([n, k]) => n * k), s.tiedEmbeddings ? 0 : s.vocab * s.hidden);
  return 2 * (s.vocab * s.hidden + s.hidden) + head + s.layers * perLayer + Math.min(Q8_TILE_BYTES, 2 * largest);
}
