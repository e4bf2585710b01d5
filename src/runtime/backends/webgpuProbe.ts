// The WebGPU probe, run in a child process (isolatedProbe.ts): it creates onnxruntime's WebGPU execution provider,
// which makes Dawn open the GPU driver (Vulkan on Linux, D3D12 on Windows, Metal on macOS), and runs a small
// MatMul + Softmax graph on it. A driver that crashes or hangs there takes down only the child. The result must
// match the same arithmetic done here in JS, so an adapter that runs but computes wrong is not taken for working.
// Before that it asks Dawn's Node binding which adapter it picks (dawnAdapter.ts): the name, vendor and kind the
// UI shows.
import { ort } from '../onnx/ort';
import { GraphBuilder } from '../onnx/graphBuilder';
import { type DawnAdapterInfo, readDawnAdapter } from './dawnAdapter';

export interface WebGpuProbe {
  /** Largest absolute difference from the JS reference. */
  maxError: number;
  /** Session creation and one run, in milliseconds. */
  milliseconds: number;
  /** The adapter as Dawn describes it, or why that could not be read (the probe itself still counts). */
  dawn: DawnAdapterInfo | { error: string };
}

/** Worse than this (f32 on any adapter, f16 inside the provider included) and the adapter is not trusted. */
const PROBE_TOLERANCE = 1e-3;

export async function probe(): Promise<WebGpuProbe> {
  const M = 4, K = 8, N = 5;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i + 1));
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(2 * i + 1));
  const g = new GraphBuilder('webgpu_probe');
  const input = g.input('a', [M, K]);
  g.output(g.op('Softmax', [g.op('MatMul', [input, g.weight('b', b, [K, N])])], { axis: -1 }), 'y', [M, N]);
  const dawn = await readDawnAdapter();
  const started = Date.now();
  const graph = g.finish();
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(graph.model, { executionProviders: ['webgpu'], logSeverityLevel: 3, externalData: graph.externalData });
  } catch (err) {
    // "/onnxruntime_src/.../webgpu_context.cc:136 ... was false. Failed to get a WebGPU adapter: No supported adapters"
    throw new Error(String((err as Error).message).replace(/^[\s\S]*? was false\. /, ''));
  }
  try {
    const out = await session.run({ a: new ort.Tensor('float32', a, [M, K]) });
    const y = (out.y as ort.Tensor).data as Float32Array;
    const expected = softmaxRows(matmul(a, b, M, K, N), M, N);
    let maxError = 0;
    for (let i = 0; i < expected.length; i++) maxError = Math.max(maxError, Math.abs(y[i]! - expected[i]!));
    if (!(maxError <= PROBE_TOLERANCE)) throw new Error(`the adapter computes wrong results (MatMul + Softmax off by ${maxError})`);
    return { maxError, milliseconds: Date.now() - started, dawn };
  } finally {
    await session.release();
  }
}

function matmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) c[i * N + j]! += a[i * K + k]! * b[k * N + j]!;
  return c;
}

function softmaxRows(x: Float64Array, M: number, N: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < M; i++) {
    const row = x.subarray(i * N, (i + 1) * N);
    const max = Math.max(...row);
    let sum = 0;
    for (let j = 0; j < N; j++) sum += (y[i * N + j] = Math.exp(row[j]! - max));
    for (let j = 0; j < N; j++) y[i * N + j]! /= sum;
  }
  return y;
}
