// The models the Download… choice offers, and the one recommended for this machine: by the GPU when one is found
// and a preset fits it (`cskv-code models --json` computes the fits, with the CUDA engine's arithmetic), else by
// the RAM for the CPU engine. No vscode import: tested on its own.
import * as os from 'node:os';
import { formatBytes } from './formatBytes';
import type { GpuFit, GpuReport } from './gpuFit';

/** The shape of a preset's model (its config.json), for the GPU fit before it is downloaded. */
export interface PresetShape {
  hiddenSize: number;
  layers: number;
  heads: number;
  headDim: number;
  kvDim: number;
  intermediateSize: number;
  vocabSize: number;
  tieEmbeddings: boolean;
  maxPositions: number;
}

export interface ModelPreset {
  label: string;
  /** What `pull` takes. */
  target: string;
  detail: string;
  /** RAM it wants on the CPU engine, in GiB: without a GPU it fits, the largest that fits is recommended. */
  needsRamGiB: number;
  shape: PresetShape;
}

// Qwen2.5-Coder-1.5B-Instruct and -7B-Instruct's config.json.
const QWEN25_CODER_15B: PresetShape = { hiddenSize: 1536, layers: 28, heads: 12, headDim: 128, kvDim: 256, intermediateSize: 8960, vocabSize: 151936, tieEmbeddings: true, maxPositions: 32768 };
const QWEN25_CODER_7B: PresetShape = { hiddenSize: 3584, layers: 28, heads: 28, headDim: 128, kvDim: 512, intermediateSize: 18944, vocabSize: 152064, tieEmbeddings: false, maxPositions: 32768 };

/** Code models known to run here, smallest first (Qwen2.5-Coder's own GGUF files; sizes as the Hub lists them). */
export const MODEL_PRESETS: readonly ModelPreset[] = [
  { label: 'Qwen2.5-Coder 1.5B Instruct, Q8_0', target: 'Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:q8_0', detail: 'about 1.9 GB download: runs on any machine, also on the CPU', needsRamGiB: 4, shape: QWEN25_CODER_15B },
  { label: 'Qwen2.5-Coder 7B Instruct, Q4_K_M', target: 'Qwen/Qwen2.5-Coder-7B-Instruct-GGUF:q4_k_m', detail: 'about 4.7 GB download: 16 GB of RAM on the CPU', needsRamGiB: 16, shape: QWEN25_CODER_7B },
  { label: 'Qwen2.5-Coder 7B Instruct, Q8_0', target: 'Qwen/Qwen2.5-Coder-7B-Instruct-GGUF:q8_0', detail: 'about 8.1 GB download: 32 GB of RAM on the CPU', needsRamGiB: 32, shape: QWEN25_CODER_7B },
];

export interface Recommendation {
  preset: ModelPreset;
  /** "fits your GPU (NVIDIA …)" or "for this machine's 16 GB of RAM". */
  why: string;
}

/**
 * The largest preset that fits the GPU (when one was found and the CUDA engine can use it) with the engine's default
 * bf16 weights (a fit that needs --weights q8 is not what the extension would load), else the largest that fits the
 * RAM. `fits` are the presets' fits from the models listing, by target.
 */
export function recommendedPreset(gpu: GpuReport | undefined, fits: ReadonlyArray<{ target: string; gpuFit?: GpuFit | undefined }> = [], totalMemoryBytes = os.totalmem()): Recommendation {
  if (gpu?.found && !gpu.problem) {
    const onGpu = [...MODEL_PRESETS].reverse().find((p) => {
      const fit = fits.find((f) => f.target === p.target)?.gpuFit;
      return fit?.verdict === 'fits' && fit.weights === 'bf16';
    });
    if (onGpu) return { preset: onGpu, why: `fits your GPU (${gpu.name}, ${formatBytes(gpu.freeBytes)} free)` };
  }
  const gib = totalMemoryBytes / 1024 ** 3;
  const preset = [...MODEL_PRESETS].reverse().find((p) => p.needsRamGiB <= gib) ?? MODEL_PRESETS[0]!;
  return { preset, why: `for this machine's ${Math.round(gib)} GB of RAM` };
}
