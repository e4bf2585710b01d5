// How many tokens of context the CUDA engine reserves on a GPU: the model's own limit (or the caller's), shrunk
// until weights, the preallocated cache and the scratch buffers fit the free device memory with a margin. The
// native side reserves exactly what its layout says (native/src/engine/cacheLayout.h) and is the authority: a
// plan that is still too large ends in OUT_OF_MEMORY at load time, never in the middle of a prefill.
import type { GpuFit } from '../../shared/gpuFit';
import { DEFAULTS } from '../../shared/settings';
import type { ModelConfig } from '../model/config';
import type { NativeCacheLayout, NativeCacheSpec } from './nativeAddon';
import { deviceQ4WeightBytes } from './cudaQ4Weights';
import { deviceQ8WeightBytes } from './cudaQ8Weights';
import type { CudaWeightFormat } from './cudaWeightFormat';

/** Tokens the CUDA engine runs through the model at once. */
export const CUDA_DEFAULT_CHUNK = 512;

export interface DeviceModelShape {
  hidden: number;
  layers: number;
  qDim: number;
  kvDim: number;
  intermediate: number;
  vocab: number;
  headDim: number;
  tiedEmbeddings: boolean;
}

export interface CapacityPlanInput {
  shape: DeviceModelShape;
  cache: Omit<NativeCacheSpec, 'capacityTokens'>;
  /** The most tokens wanted (the model's maxPositions or the caller's limit). */
  wantedTokens: number;
  /** Free device memory before loading, or undefined when unknown (then nothing is shrunk). */
  freeBytes: number | undefined;
  layoutOf: (spec: NativeCacheSpec) => NativeCacheLayout;
  /** How linear layers are held on the device (default bf16). */
  weights?: CudaWeightFormat | undefined;
}

export interface CapacityPlan {
  capacityTokens: number;
  cacheBytes: number;
  weightBytes: number;
  scratchBytes: number;
  /** Why the capacity is below the wanted length, or undefined. */
  shrunk?: string | undefined;
}

/** Left free for cuBLASLt, the CUDA context and other programs. */
export const DEVICE_MARGIN_BYTES = 1024 ** 3;

export function deviceModelShape(c: Pick<ModelConfig, 'hiddenSize' | 'layers' | 'heads' | 'headDim' | 'kvDim' | 'intermediateSize' | 'vocabSize' | 'tieEmbeddings'>): DeviceModelShape {
  return {
    hidden: c.hiddenSize, layers: c.layers, qDim: c.heads * c.headDim, kvDim: c.kvDim, intermediate: c.intermediateSize, vocab: c.vocabSize,
    headDim: c.headDim, tiedEmbeddings: c.tieEmbeddings,
  };
}

export function deviceWeightBytes(s: DeviceModelShape): number {
  const perLayer = 2 * s.hidden + (s.qDim + 2 * s.kvDim) * s.hidden + s.hidden * s.qDim + 3 * s.intermediate * s.hidden;
  return 2 * (s.vocab * s.hidden * (s.tiedEmbeddings ? 1 : 2) + s.hidden + s.layers * perLayer);
}

/** Scratch of the engine at a capacity: per-chunk activations, the RoPE table and (CSKV) the rebuilt branch. */
export function deviceScratchBytes(s: DeviceModelShape, chunk: number, capacity: number, maxRank: number): number {
  const perToken = s.hidden * 6 + (s.qDim + 2 * s.kvDim) * 4 + s.qDim * 2 + s.intermediate * 10 + s.vocab * 4;
  const rebuilt = maxRank > 0 ? capacity * (2 * s.kvDim * 2 + maxRank * 2) : 0;
  return chunk * perToken + capacity * s.headDim * 4 + rebuilt;
}

export function planCapacity(input: CapacityPlanInput): CapacityPlan {
  const { shape, cache } = input;
  const weightBytes = input.weights === 'q8' ? deviceQ8WeightBytes(shape) : input.weights === 'q4' ? deviceQ4WeightBytes(shape) : deviceWeightBytes(shape);
  const maxRank = Math.max(0, ...(cache.kRanks ?? []), ...(cache.vRanks ?? []));
  const chunk = Math.max(cache.chunkTokens, cache.window);
  const step = cache.kRanks ? cache.window : 1;
  const cost = (capacity: number): { cache: number; scratch: number; total: number } => {
    const layout = input.layoutOf({ ...cache, capacityTokens: capacity });
    const scratch = deviceScratchBytes(shape, chunk, layout.capacityTokens, maxRank);
    return { cache: layout.reservedBytes, scratch, total: weightBytes + layout.reservedBytes + scratch };
  };
  let capacity = Math.max(step, Math.floor(input.wantedTokens / step) * step);
  let c = cost(capacity);
  if (input.freeBytes !== undefined) {
    const budget = input.freeBytes - DEVICE_MARGIN_BYTES;
    if (weightBytes > budget) {
      return { capacityTokens: 0, cacheBytes: 0, weightBytes, scratchBytes: 0, shrunk: `the weights alone (${gib(weightBytes)}) do not fit the ${gib(input.freeBytes)} free on the GPU` };
    }
    while (c.total > budget && capacity > step) {
      capacity = Math.max(step, Math.floor((capacity * 3) / 4 / step) * step);
      c = cost(capacity);
    }
    if (c.total > budget) return { capacityTokens: 0, cacheBytes: c.cache, weightBytes, scratchBytes: c.scratch, shrunk: `not even ${capacity} tokens fit the ${gib(input.freeBytes)} free on the GPU` };
  }
  const shrunk = capacity < input.wantedTokens
    ? `the context is limited to ${capacity} tokens: ${gib(input.freeBytes ?? 0)} free on the GPU, ${gib(weightBytes)} of weights`
    : undefined;
  return { capacityTokens: capacity, cacheBytes: c.cache, weightBytes, scratchBytes: c.scratch, shrunk };
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/**
 * Whether a model of `shape` fits a GPU with `freeBytes` free, for a workspace of `budgetTokens` (at most the
 * model's `maxPositions`): the capacity plan the engine loads with, for an uncompressed cache at the default
 * window and width. With bf16 weights (the engine's default), unless smaller weights fit where bf16 does not: q8
 * (--weights q8, ~8.6 GB instead of ~15 GB for 7B), else q4 (--weights q4, ~5.5 GB): the first of them that fits the
 * whole budget where bf16 leaves less, or that fits some context where bf16 leaves none. Then that plan, saying so.
 */
export function gpuFit(input: { shape: DeviceModelShape; maxPositions: number; budgetTokens: number; freeBytes: number; layoutOf: CapacityPlanInput['layoutOf'] }): GpuFit {
  const bf16 = fitWith(input, 'bf16');
  if (bf16.verdict === 'fits') return bf16;
  const smaller = [fitWith(input, 'q8'), fitWith(input, 'q4')];
  return smaller.find((fit) => fit.verdict === 'fits')
    ?? (bf16.verdict === 'does-not-fit' ? smaller.find((fit) => fit.verdict === 'shorter-context') : undefined)
    ?? bf16;
}

function fitWith(input: Parameters<typeof gpuFit>[0], weights: CudaWeightFormat): GpuFit {
  const cache = { layers: input.shape.layers, kvDim: input.shape.kvDim, window: DEFAULTS.window, bits: DEFAULTS.bits, chunkTokens: CUDA_DEFAULT_CHUNK };
  const wantedTokens = Math.min(input.budgetTokens, input.maxPositions);
  const plan = { shape: input.shape, cache, wantedTokens, layoutOf: input.layoutOf, weights };
  const whole = planCapacity({ ...plan, freeBytes: undefined });
  const fitted = planCapacity({ ...plan, freeBytes: input.freeBytes });
  const verdict = fitted.capacityTokens === 0 ? 'does-not-fit' : fitted.capacityTokens < wantedTokens ? 'shorter-context' : 'fits';
  return {
    verdict, weights, wantedTokens, contextTokens: fitted.capacityTokens,
    needBytes: whole.weightBytes + whole.cacheBytes + whole.scratchBytes + DEVICE_MARGIN_BYTES,
    weightBytes: whole.weightBytes, freeBytes: input.freeBytes,
  };
}
