// What crosses between the host and a GPU while some work runs: every onnxruntime session run's host-memory
// inputs (sent up) and host-memory outputs (read back), counted by wrapping InferenceSession.run. Tensors that
// stay on the device ('gpu-buffer') cross nothing. Used by the WebGPU tests' transfer assertions and by
// bench/webgpu.ts's byte columns.
import { ort } from '../../src/runtime/onnx/ort';

export interface Transfers {
  /** Bytes of each host-memory output, in the order they were read back. */
  down: number[];
  /** Bytes of every host-memory input together. */
  up: number;
  /** Of them, the bytes of float tensors (activations, cache rows, masks, tables): the rest are int64 bounds. */
  upFloats: number;
}

export function totalDown(t: Transfers): number {
  return t.down.reduce((a, b) => a + b, 0);
}

/** Runs `work` with every session run counted; one count at a time (it patches the prototype). */
export async function countTransfers(work: () => Promise<unknown>): Promise<Transfers> {
  const proto = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;
  const original = proto.run;
  const crossed: Transfers = { down: [], up: 0, upFloats: 0 };
  const hostBytes = (tensor: ort.Tensor): number => (tensor.location === 'cpu' ? (tensor.data as Float32Array).byteLength : 0);
  proto.run = async function (this: ort.InferenceSession, ...args: Parameters<typeof original>) {
    for (const value of Object.values(args[0] as Record<string, ort.Tensor>)) {
      crossed.up += hostBytes(value);
      if (value.type !== 'int64') crossed.upFloats += hostBytes(value);
    }
    const out = await original.apply(this, args);
    for (const value of Object.values(out)) if ((value as ort.Tensor).location === 'cpu') crossed.down.push(hostBytes(value as ort.Tensor));
    return out;
  } as typeof original;
  try {
    await work();
  } finally {
    proto.run = original;
  }
  return crossed;
}
