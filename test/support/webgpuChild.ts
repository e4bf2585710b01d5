// What the WebGPU tests run in a child process (test/support/webgpu.ts): each task returns plain JSON.
import { ort } from '../../src/runtime/onnx/ort';
import { loadWebGpuEngine } from '../../src/runtime/backends/webgpuEngine';
import { GraphBuilder } from '../../src/runtime/onnx/graphBuilder';

export type WebGpuTask =
  | { task: 'steps'; modelDir: string; cskv?: string | undefined; prompt: number[]; tokens: number[] }
  | { task: 'padded-empty-matmul' };

export async function probe(t: WebGpuTask): Promise<unknown> {
  if (t.task === 'steps') return steps(t.modelDir, t.cskv, t.prompt, t.tokens);
  return paddedEmptyMatMul();
}

/** Logits after the prompt and after each of `tokens`, decoded one at a time on the WebGPU engine. */
async function steps(modelDir: string, cskv: string | undefined, prompt: number[], tokens: number[]): Promise<number[][]> {
  const engine = await loadWebGpuEngine(modelDir, { cskv, weights: 'f32' });
  try {
    const rows = [Array.from(await engine.prefill(prompt))];
    for (const t of tokens) rows.push(Array.from(await engine.prefill([t])));
    return rows;
  } finally {
    await engine.dispose();
  }
}

/**
 * The layer graph's compressed-value product at its first prefill: probabilities [2, 1, 3, 0] times features
 * [0, 4], both padded by one zero along the empty axis as layerGraph.ts does. Unpadded, this MatMul crashes the
 * WebGPU provider (SIGSEGV, onnxruntime-node 1.30 on lavapipe).
 */
async function paddedEmptyMatMul(): Promise<{ dims: readonly number[]; values: number[] }> {
  const g = new GraphBuilder('padded_empty_matmul');
  const p = g.input('p', [2, 1, 3, 'K']);
  const c = g.input('c', ['K', 4]);
  const product = g.op('MatMul', [g.op('Pad', [p, g.ints([0, 0, 0, 0, 0, 0, 0, 1])]), g.op('Pad', [c, g.ints([0, 0, 1, 0])])]);
  g.output(product, 'y', [2, 1, 3, 4]);
  const graph = g.finish();
  const session = await ort.InferenceSession.create(graph.model, { executionProviders: ['webgpu'], logSeverityLevel: 3, externalData: graph.externalData });
  try {
    const out = await session.run({
      p: new ort.Tensor('float32', new Float32Array(0), [2, 1, 3, 0]),
      c: new ort.Tensor('float32', new Float32Array(0), [0, 4]),
    });
    const y = out.y as ort.Tensor;
    return { dims: y.dims, values: Array.from(y.data as Float32Array) };
  } finally {
    await session.release();
  }
}
