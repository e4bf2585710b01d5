// How the CUDA engine holds linear layers' weights: bf16, 8-bit blocks (cudaQ8Weights.ts) or 4-bit blocks
// (cudaQ4Weights.ts), from the runtime's weight option; and the device bytes of the blockwise forms.
import type { WeightFormat } from '../model/weightFormat';
import type { ModelWeights } from '../model/weights';
import type { RowReader } from '../onnx/blockQuantizer';
import type { DeviceModelShape } from './cudaMemoryPlan';

export type CudaWeightFormat = 'bf16' | 'q8' | 'q4';

/** The bf16 scratch the prefill path dequantises q8/q4 weight rows into, at most (q8Layout.h kQ8TileBytes). */
export const QUANTISED_TILE_BYTES = 64 * 1024 ** 2;

/**
 * The CUDA engine's format for the runtime's weight option: q8 and q4 as asked; any other (f32, f16) and no option
 * mean its unquantised form, bf16 (the blockwise forms are not yet the CUDA default: their kernels have not run on a GPU).
 */
export function cudaWeightFormat(option: WeightFormat | undefined): CudaWeightFormat {
  return option === 'q8' || option === 'q4' ? option : 'bf16';
}

/** Rows of the output head (and of the q8 embedding) read at a time when quantised at load (vocab × hidden: 2 GB as f32 on 7B). */
export const HEAD_ROWS_PER_READ = 256;

/**
 * A linear weight [n, k] as f32 for the quantiser: whole (the layers' weights, as the CPU engine reads them; a GGUF's
 * q/k rows permuted by llama.cpp's converter can only be read whole), or `rowsPerRead` rows at a time (the output
 * head, never permuted, too large to hold as f32).
 */
export function linearValues(weights: ModelWeights, name: string, n: number, k: number, rowsPerRead?: number): Float32Array | RowReader {
  if (rowsPerRead === undefined) return weights.readFloat32(name, [n, k]);
  let first = 0;
  let rows: Float32Array = new Float32Array(0);
  return (r: number): Float32Array => {
    if (r < first || r >= first + rows.length / k) {
      first = r - (r % rowsPerRead);
      rows = weights.readRows(name, first, Math.min(rowsPerRead, n - first));
    }
    return rows.subarray((r - first) * k, (r - first + 1) * k);
  };
}

/**
 * Device bytes of the weights held in blocks (native/src/engine/deviceEngine.cc, Allocate): linear layers and an
 * untied output head at `bytesOf(n, k)`, the embedding at `bytesOf` too with `embeddingInBlocks` (q8: a tied head
 * shares it) else bf16, the norms bf16, plus the prefill tile (the largest blockwise weight's bf16 rows, at most
 * QUANTISED_TILE_BYTES).
 */
export function deviceBlockWeightBytes(s: DeviceModelShape, bytesOf: (n: number, k: number) => number, embeddingInBlocks: boolean): number {
  const linears: [number, number][] = [[s.qDim + 2 * s.kvDim, s.hidden], [s.hidden, s.qDim], [2 * s.intermediate, s.hidden], [s.hidden, s.intermediate]];
  const perLayer = 2 * s.hidden * 2 + linears.reduce((sum, [n, k]) => sum + bytesOf(n, k), 0);
  const embedding = embeddingInBlocks ? bytesOf(s.vocab, s.hidden) : 2 * s.vocab * s.hidden;
  const head = s.tiedEmbeddings ? 0 : bytesOf(s.vocab, s.hidden);
  const headInBlocks = !s.tiedEmbeddings || embeddingInBlocks;
  const largest = Math.max(...linears.map(([n, k]) => n * k), headInBlocks ? s.vocab * s.hidden : 0);
  return embedding + 2 * s.hidden + head + s.layers * perLayer + Math.min(QUANTISED_TILE_BYTES, 2 * largest);
}
