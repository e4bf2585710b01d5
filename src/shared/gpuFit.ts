// Whether a model fits the user's GPU, as `cskv-code models --json` reports it and the command line and the model
// picker say it. The arithmetic is the CUDA engine's own capacity plan (runtime/backends/cudaMemoryPlan.ts).
import { formatBytes } from './formatBytes';

/** The GPU the CUDA engine would use (device 0), as the CUDA probe reports it. */
export type GpuReport =
  | {
      found: true;
      name: string;
      totalBytes: number;
      freeBytes: number;
      /** Why the CUDA engine cannot run on it after all (no cuBLASLt, a GPU too old, ...). */
      problem?: string | undefined;
    }
  | {
      found: false;
      /** The whole sentence: "no NVIDIA GPU found: ..." or "could not look for an NVIDIA GPU: ...". */
      reason: string;
    };

/**
 * Whether a model fits the GPU for the CUDA engine: its weights as the engine holds them (bf16 by default, whatever
 * the file stores; 8- or 4-bit blocks with --weights q8 / q4), a full-precision KV cache for the workspace budget (CSKV factors
 * make it smaller) and the engine's scratch, against the GPU's free memory less a margin.
 */
export interface GpuFit {
  /** 'shorter-context': the weights fit, the cache only for `contextTokens` of the `wantedTokens`. */
  verdict: 'fits' | 'shorter-context' | 'does-not-fit';
  /**
   * The weights the verdict assumes: bf16 (the engine's default), or q8 / q4 (--weights q8 / q4), the first of
   * them that fits the whole budget where bf16 does not, or some context where bf16 fits nothing.
   */
  weights: 'bf16' | 'q8' | 'q4';
  wantedTokens: number;
  contextTokens: number;
  /** Everything for `wantedTokens`, the margin included. */
  needBytes: number;
  weightBytes: number;
  freeBytes: number;
}

/** "NVIDIA GeForce RTX 4070 (11.2 GB free of 12.0 GB)", or why there is none. */
export function describeGpu(gpu: GpuReport): string {
  if (!gpu.found) return gpu.reason;
  const memory = `${gpu.name} (${formatBytes(gpu.freeBytes)} free of ${formatBytes(gpu.totalBytes)})`;
  return gpu.problem ? `${memory}, but the CUDA engine cannot use it: ${gpu.problem}` : memory;
}

/** "fits your GPU (needs 9.8 GB, 11.2 GB free)", "fits your GPU with q8 weights (--weights q8; ...)" and the like. */
export function describeFit(fit: GpuFit): string {
  const quantised = fit.weights !== 'bf16';
  const need = `${quantised ? `--weights ${fit.weights}; ` : ''}needs ${formatBytes(fit.needBytes)} for ${fit.wantedTokens.toLocaleString('en-US')} tokens, ${formatBytes(fit.freeBytes)} free`;
  const q8 = quantised ? ` with ${fit.weights} weights` : '';
  switch (fit.verdict) {
    case 'fits':
      return `fits your GPU${q8} (${need})`;
    case 'shorter-context':
      return `fits your GPU${q8} with ${fit.contextTokens.toLocaleString('en-US')} tokens of context (${need})`;
    case 'does-not-fit':
      return `does not fit your GPU (${need})`;
  }
}

/** The short form for a table column: "yes", "with q8", "with q4", "12,288 tok", "12,288 tok q4", "no". */
export function fitCell(fit: GpuFit | undefined): string {
  if (!fit) return '-';
  const quantised = fit.weights !== 'bf16';
  if (fit.verdict === 'fits') return quantised ? `with ${fit.weights}` : 'yes';
  if (fit.verdict === 'shorter-context') return `${fit.contextTokens.toLocaleString('en-US')} tok${quantised ? ` ${fit.weights}` : ''}`;
  return 'no';
}
