// A model found on this machine, as `cskv-code models --json` lists it: the runtime's discovery writes these and
// the extension's model picker reads them.
import type { GpuFit, GpuReport } from './gpuFit';

export type ModelSource = 'huggingface' | 'lmstudio' | 'llama.cpp' | 'ollama' | 'folder';

export interface FoundModel {
  /** org/name for the hub, the file name (or general.name) for GGUF, name:tag for Ollama. */
  name: string;
  source: ModelSource;
  format: 'safetensors' | 'gguf';
  /** What --model / cskv.modelPath takes: the snapshot folder or the GGUF file. */
  path: string;
  /** Bytes of the weight files. */
  sizeBytes: number;
  architecture: string | undefined;
  parameters: number | undefined;
  /** Weight type: F16/BF16/F32 for safetensors, the quantisation (Q4_K_M, Q8_0, ...) for GGUF. */
  quantisation: string | undefined;
  loadable: boolean;
  /** Why it cannot be loaded; undefined when it can. */
  reason: string | undefined;
  /** Whether CSKV factors for it exist (the default factor file beside it). */
  hasCskvFactors: boolean;
}

/** What `cskv-code models --json` writes. */
export interface ModelsListing {
  gpu: GpuReport;
  /** The workspace budget (tokens) the fits are computed for. */
  budgetTokens: number;
  /** `gpuFit` only where a GPU was found and the model's shape could be read. */
  models: Array<FoundModel & { gpuFit?: GpuFit | undefined }>;
  /** The download presets (by target) and whether each fits the GPU: the picker recommends by it. */
  presets: Array<{ target: string; gpuFit?: GpuFit | undefined }>;
}
