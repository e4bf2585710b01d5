// The CUDA engine's 8-bit weights (`--weights q8`): which tensors take them, their device layout, and how many
// bytes they hold. The quantiser is the CPU engine's (src/runtime/onnx/blockQuantizer.ts, one home): a Q8_0 GGUF
// tensor arrives as its own blocks, any other tensor is quantised at load, row batch by row batch, one tensor at
// a time. The device layout (native/src/kernels/q8Layout.h) is those blocks with the implicit zero point 128
// taken out (code ^ 0x80 = the signed int8), so both engines compute with the same numbers.
import type { ModelWeights } from '../model/weights';
import { type BlockQuantised, quantiseBlockwise } from '../onnx/blockQuantizer';
import type { DeviceModelShape } from './cudaMemoryPlan';
import { deviceBlockWeightBytes, linearValues } from './cudaWeightFormat';
import type { Q8WeightArrays } from './nativeAddon';

export const Q8_BLOCK = 32;

/** The CPU engine's 8-bit blocks in the device layout. Exact: same codes (re-centred), same f32 scales. */
export function deviceQ8(blocks: BlockQuantised): Q8WeightArrays {
  if (blocks.bits !== 8 || blocks.blockSize !== Q8_BLOCK) throw new RangeError(`the CUDA engine takes 8-bit blocks of ${Q8_BLOCK}, got ${blocks.bits}-bit blocks of ${blocks.blockSize}`);
  const codes = new Int8Array(blocks.codes.length);
  for (let i = 0; i < codes.length; i++) codes[i] = (blocks.codes[i]! ^ 0x80) << 24 >> 24;
  return { codes, scales: blocks.scales, n: blocks.n, k: blocks.k };
}

/**
 * A linear weight [n, k] of the checkpoint in the device's q8 layout: the file's Q8_0 blocks, else quantised here
 * from the whole tensor or, with `rowsPerRead`, row batch by row batch (linearValues).
 */
export function readDeviceQ8(weights: ModelWeights, name: string, n: number, k: number, rowsPerRead?: number): Q8WeightArrays {
  const stored = weights.readQ8Blocks(name, [n, k]);
  if (stored) return deviceQ8(stored);
  return deviceQ8(quantiseBlockwise(linearValues(weights, name, n, k, rowsPerRead), n, k, 8, Q8_BLOCK));
}

/** Device bytes of a q8 weight [n, k]: int8 codes (rows padded to whole blocks) and one f32 scale per block. */
export function q8Bytes(n: number, k: number): number {
  const blocks = n * Math.ceil(k / Q8_BLOCK);
  return blocks * Q8_BLOCK + blocks * 4;
}

/** Device bytes of the weights with --weights q8 (cudaWeightFormat.ts): the embedding table in q8 too. */
export function deviceQ8WeightBytes(s: DeviceModelShape): number {
  return deviceBlockWeightBytes(s, q8Bytes, true);
}
