// The models the Download… choice offers, and the one recommended for this machine's memory. No vscode import:
// tested on its own.
import * as os from 'node:os';

export interface ModelPreset {
  label: string;
  /** What `pull` takes. */
  target: string;
  detail: string;
  /** Memory (RAM, or GPU memory) it wants, in GiB: the picker recommends the largest that fits. */
  needsGiB: number;
}

/** Code models known to run here, smallest first (Qwen2.5-Coder's own GGUF files; sizes as the Hub lists them). */
export const MODEL_PRESETS: readonly ModelPreset[] = [
  { label: 'Qwen2.5-Coder 1.5B Instruct, Q8_0', target: 'Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:q8_0', detail: 'about 1.9 GB: runs on any machine, also on the CPU', needsGiB: 4 },
  { label: 'Qwen2.5-Coder 7B Instruct, Q4_K_M', target: 'Qwen/Qwen2.5-Coder-7B-Instruct-GGUF:q4_k_m', detail: 'about 4.7 GB: for 8 GB of GPU memory or 16 GB of RAM', needsGiB: 16 },
  { label: 'Qwen2.5-Coder 7B Instruct, Q8_0', target: 'Qwen/Qwen2.5-Coder-7B-Instruct-GGUF:q8_0', detail: 'about 8.1 GB: for 16 GB of GPU memory or 32 GB of RAM', needsGiB: 32 },
];

/** The preset for this machine's memory (the extension cannot see the GPU; the sidecar reports it once running). */
export function recommendedPreset(totalMemoryBytes = os.totalmem()): ModelPreset {
  const gib = totalMemoryBytes / 1024 ** 3;
  return [...MODEL_PRESETS].reverse().find((p) => p.needsGiB <= gib) ?? MODEL_PRESETS[0]!;
}
