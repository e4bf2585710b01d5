// How the onnx engines hold the weights of every linear layer and of the output head: f32 as in the checkpoint
// (after conversion), blockwise 8/4-bit (blocks of 32 along the input dimension, one f32 scale per block),
// quantised at load from the checkpoint's bf16/f16/f32 values, or f16 (WebGPU only: products in half precision
// on an adapter with `shader-f16`; the CPU provider has no fast f16 kernels).
export const WEIGHT_FORMATS = ['f32', 'q8', 'q4', 'f16'] as const;
export type WeightFormat = (typeof WEIGHT_FORMATS)[number];

/**
 * 8-bit: decode is memory-bound and reads a quarter of the f32 bytes, and onnxruntime's int8 kernels keep
 * prefill ahead of f32 too (bench/cpu.ts measures all three side by side; q4 reads less but prefills slower).
 */
export const DEFAULT_WEIGHT_FORMAT: WeightFormat = 'q8';

export function isWeightFormat(value: string): value is WeightFormat {
  return (WEIGHT_FORMATS as readonly string[]).includes(value);
}
