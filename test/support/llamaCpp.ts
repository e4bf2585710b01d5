// llama.cpp through node-llama-cpp (a dev dependency with prebuilt CPU libraries; nothing is built or downloaded):
// the CPU benchmark's peer and the GGUF writer's independent reader.
import type * as NodeLlamaCpp from 'node-llama-cpp';

/** The ES module, loaded from CommonJS (tsc would turn a plain import() into require()). */
export async function loadNodeLlamaCpp(): Promise<typeof NodeLlamaCpp> {
  const importModule = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<typeof NodeLlamaCpp>;
  return importModule('node-llama-cpp');
}

/** llama.cpp's CPU build, never compiled or fetched here. */
export async function cpuLlama(): Promise<NodeLlamaCpp.Llama> {
  const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
  return getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, logLevel: LlamaLogLevel.error });
}
