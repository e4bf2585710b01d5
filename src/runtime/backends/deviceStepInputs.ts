// The inputs every layer graph of a step shares (RoPE angles, the attention mask), made on the GPU once per step
// (WebGPU backend). Fed from host memory they would cross to the device once per layer run, and two of them grow
// with the context: the mask [T, S] and, with CSKV, the angles of the compressed keys [Sc, hd] (at 128k tokens and
// hd 128, 64 MB each per layer per step). Here the RoPE tables stay on the device and each step slices them there;
// a decode step's mask (all zeros without a sliding window) is a slice of a zero row kept there too; other masks
// (prefill chunks, sliding windows) go up once per step.
import { ort } from '../onnx/ort';
import { GraphBuilder } from '../onnx/graphBuilder';

/** A step's angles and mask as the host has them: [positions, hd] tables and the additive mask rows. */
export interface StepInputs {
  cos: Float32Array;
  sin: Float32Array;
  headDim: number;
  /** The chunk's positions [start, start + T). */
  start: number;
  T: number;
  /** Positions whose keys the graph rotates ([0, rotated)), or undefined when the graphs take no cos_k/sin_k. */
  rotated: number | undefined;
  /** The additive mask [T, S]. */
  mask: Float32Array;
}

export class DeviceStepInputs {
  private table: { cos: Float32Array; cosOnDevice: ort.Tensor; sinOnDevice: ort.Tensor } | undefined;
  private zeros: ort.Tensor | undefined;

  private constructor(
    /** y = a[start:end] along `axis`, on the device. */
    private readonly slicer: ort.InferenceSession,
    /** y = b, on the device (an upload). */
    private readonly uploader: ort.InferenceSession,
  ) {}

  static async create(sessionOptions: ort.InferenceSession.SessionOptions): Promise<DeviceStepInputs> {
    const options = { ...sessionOptions, preferredOutputLocation: 'gpu-buffer' as const };
    const [slicer, uploader] = await Promise.all([
      ort.InferenceSession.create(sliceGraph().model, options), ort.InferenceSession.create(uploadGraph().model, options),
    ]);
    return new DeviceStepInputs(slicer, uploader);
  }

  /** The step's cos_q/sin_q, cos_k/sin_k and mask as GPU tensors; the caller disposes them after the step. */
  async feeds(step: StepInputs): Promise<Record<string, ort.Tensor>> {
    const { headDim: hd, start, T } = step;
    const S = start + T;
    const table = await this.tableFor(step.cos, step.sin, hd);
    const feeds: Record<string, ort.Tensor> = {
      cos_q: await this.slice(table.cosOnDevice, 0, start, S),
      sin_q: await this.slice(table.sinOnDevice, 0, start, S),
    };
    if (step.rotated !== undefined) {
      // An empty slice would be a zero-sized GPU tensor: those go as host tensors, as nothing crosses anyway.
      feeds.cos_k = step.rotated > 0 ? await this.slice(table.cosOnDevice, 0, 0, step.rotated) : new ort.Tensor('float32', new Float32Array(0), [0, hd]);
      feeds.sin_k = step.rotated > 0 ? await this.slice(table.sinOnDevice, 0, 0, step.rotated) : new ort.Tensor('float32', new Float32Array(0), [0, hd]);
    }
    feeds.mask = T === 1 && step.mask.every((v) => v === 0)
      ? await this.slice(await this.zeroRow(S), 1, 0, S)
      : await this.upload(new ort.Tensor('float32', step.mask, [T, S]));
    return feeds;
  }

  dispose(): Promise<void> {
    for (const t of [this.table?.cosOnDevice, this.table?.sinOnDevice, this.zeros]) t?.dispose();
    this.table = undefined;
    this.zeros = undefined;
    return Promise.all([this.slicer.release(), this.uploader.release()]).then(() => undefined);
  }

  /** The RoPE tables on the device, uploaded again only when the engine made new ones (they grow by doubling). */
  private async tableFor(cos: Float32Array, sin: Float32Array, hd: number): Promise<NonNullable<DeviceStepInputs['table']>> {
    if (this.table?.cos !== cos) {
      const rows = cos.length / hd;
      const [cosOnDevice, sinOnDevice] = [await this.upload(new ort.Tensor('float32', cos, [rows, hd])), await this.upload(new ort.Tensor('float32', sin, [rows, hd]))];
      this.table?.cosOnDevice.dispose();
      this.table?.sinOnDevice.dispose();
      this.table = { cos, cosOnDevice, sinOnDevice };
    }
    return this.table;
  }

  /** A zero row [1, n] with n >= `length` (doubled as the context grows). */
  private async zeroRow(length: number): Promise<ort.Tensor> {
    if (!this.zeros || this.zeros.dims[1]! < length) {
      const size = Math.max(length, 2 * (this.zeros?.dims[1] ?? 128));
      const next = await this.upload(new ort.Tensor('float32', new Float32Array(size), [1, size]));
      this.zeros?.dispose();
      this.zeros = next;
    }
    return this.zeros;
  }

  private async slice(a: ort.Tensor, axis: number, start: number, end: number): Promise<ort.Tensor> {
    const out = await this.slicer.run({ a, start: int64(start), end: int64(end), axis: int64(axis) });
    return out.y as ort.Tensor;
  }

  private async upload(b: ort.Tensor): Promise<ort.Tensor> {
    const out = await this.uploader.run({ b });
    return out.y as ort.Tensor;
  }
}

function sliceGraph(): ReturnType<GraphBuilder['finish']> {
  const g = new GraphBuilder('device_slice');
  const a = g.input('a', ['N', 'C']);
  const [start, end, axis] = ['start', 'end', 'axis'].map((name) => g.input(name, [1], 'int64'));
  g.output(g.op('Slice', [a, start!, end!, axis!]), 'y', ['R', 'K']);
  return g.finish();
}

function uploadGraph(): ReturnType<GraphBuilder['finish']> {
  const g = new GraphBuilder('device_upload');
  g.output(g.input('b', ['N', 'C']), 'y', ['N', 'C']);
  return g.finish();
}

function int64(value: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.of(BigInt(value)), [1]);
}
