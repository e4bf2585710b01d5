// llama.cpp through node-llama-cpp's prebuilt CPU libraries (nothing is built or downloaded): the CPU benchmark's
// peer and the GGUF writer's independent reader. It is not a dependency: its platform packages for other systems
// are missing from the registry these machines reach, so `npm ci` cannot take it into the lock file. Install it
// beside the project when wanted (`npm run peers`); the types below are the part of its API used here.

export type Token = number & { __token?: never };
interface EvaluateOptions { generateNext: { token?: true; logits?: true } }
type EvaluateItem = Token | [Token, EvaluateOptions];
export interface LlamaSequence {
  clearHistory(): Promise<void>;
  controlledEvaluate(items: EvaluateItem[]): Promise<({ next?: { logits?: Map<Token, number> } } | undefined)[]>;
}
export interface LlamaContext { getSequence(): LlamaSequence; dispose(): Promise<void> }
export interface LlamaModel {
  createContext(options: { contextSize: number; threads?: number; batchSize?: number }): Promise<LlamaContext>;
  dispose(): Promise<void>;
}
export interface Llama { loadModel(options: { modelPath: string }): Promise<LlamaModel>; dispose(): Promise<void> }
interface NodeLlamaCpp {
  getLlama(options: { gpu: false; build: 'never'; usePrebuiltBinaries: true; logLevel: unknown }): Promise<Llama>;
  LlamaLogLevel: { error: unknown };
}

export const INSTALL_PEER = 'npm run peers   (npm install --no-save --ignore-scripts node-llama-cpp)';

/** The ES module, loaded from CommonJS (tsc would turn a plain import() into require()); undefined when not installed. */
export async function loadNodeLlamaCpp(): Promise<NodeLlamaCpp | undefined> {
  const importModule = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<NodeLlamaCpp>;
  try {
    return await importModule('node-llama-cpp');
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/** llama.cpp's CPU build, never compiled or fetched here. */
export async function cpuLlama(): Promise<Llama> {
  const lib = await loadNodeLlamaCpp();
  if (!lib) throw new Error(`node-llama-cpp is not installed: ${INSTALL_PEER}`);
  return lib.getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, logLevel: lib.LlamaLogLevel.error });
}
