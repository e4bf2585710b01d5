// The environment a process that runs the model is started with (the sidecar and `compress`, by the extension; the
// CLI, by its bin script; the benchmarks, by themselves): on Linux, glibc's malloc asks for transparent huge pages for what it maps
// (`glibc.malloc.hugetlb=1`, glibc 2.35 and later; older ones and other C libraries ignore it). onnxruntime runs
// without its memory arena (onnxEngine.ts), so every forward pass allocates its intermediates afresh (a keystroke's
// attention scores over 8k cached tokens are ~11 MB per layer), and with 4 KiB pages each allocation faulted its pages
// in again. Measured on a 2-core VM, 0.5B shape, q8, CSKV 16-bit, 8k tokens resident, 16 keystrokes of the in-file
// completion: 300-1100 ms a keystroke (most ~750) -> 310-370 ms; prefill of 2048 tokens, a decode step and peak RSS
// unchanged (9.5/9.7 s vs 9.3/10.5 s, 44-47 ms, 1.2-1.3 GiB both). Prefill of 8192 tokens (2 threads, two rounds in
// turns): 338 / 301 s -> 56 / 58 s, the decode step after it 232 / 79 -> 62 / 68 ms, peak RSS 1.70 / 1.27 -> 1.59 /
// 1.67 GiB.
const TUNABLE = 'glibc.malloc.hugetlb=1';

/** `env` with the runtime's malloc tunable added to GLIBC_TUNABLES (kept as given where it sets one itself). */
export function runtimeEnv(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): NodeJS.ProcessEnv {
  if (platform !== 'linux') return env;
  const given = env.GLIBC_TUNABLES ?? '';
  if (given.split(':').some((t) => t.startsWith('glibc.malloc.hugetlb='))) return env;
  return { ...env, GLIBC_TUNABLES: given ? `${given}:${TUNABLE}` : TUNABLE };
}
