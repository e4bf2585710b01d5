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
  /** One session per kind of step (with cos_k/sin_k or not, a zero mask or not), made when first needed. */
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  private constructor(
    private readonly options: ort.InferenceSession.SessionOptions,
    /** y = b, on the device (an upload). */
    private readonly uploader: ort.InferenceSession,
  ) {}

  static async create(sessionOptions: ort.InferenceSession.SessionOptions): Promise<DeviceStepInputs> {
    const options = { ...sessionOptions, preferredOutputLocation: 'gpu-buffer' as const };
    return new DeviceStepInputs(options, await ort.InferenceSession.create(uploadGraph().model, options));
  }

  /** The step's cos_q/sin_q, cos_k/sin_k and mask as GPU tensors (one run); the caller disposes them after the step. */
  async feeds(step: StepInputs): Promise<Record<string, ort.Tensor>> {
    const { headDim: hd, start, T } = step;
    const S = start + T;
    const table = await this.tableFor(step.cos, step.sin, hd);
    // An empty slice would be a zero-sized GPU tensor: the empty cos_k/sin_k go as host tensors (nothing crosses).
    const keys = step.rotated !== undefined && step.rotated > 0;
    const zeroMask = T === 1 && step.mask.every((v) => v === 0);
    const feeds: Record<string, ort.Tensor> = { cos: table.cosOnDevice, sin: table.sinOnDevice, start: int64(start), end: int64(S) };
    if (keys) feeds.rotated = int64(step.rotated!);
    if (zeroMask) feeds.zeros = await this.zeroRow(S);
    const session = await this.session(keys, zeroMask);
    const out = await session.run(feeds) as Record<string, ort.Tensor>;
    if (step.rotated === 0) out.cos_k = out.sin_k = new ort.Tensor('float32', new Float32Array(0), [0, hd]);
    if (!zeroMask) out.mask = await this.upload(new ort.Tensor('float32', step.mask, [T, S]));
    return out;
  }

  async dispose(): Promise<void> {
    for (const t of [this.table?.cosOnDevice, this.table?.sinOnDevice, this.zeros]) t?.dispose();
    this.table = undefined;
    this.zeros = undefined;
    const sessions = await Promise.all(this.sessions.values());
    await Promise.all([...sessions, this.uploader].map((s) => s.release()));
  }

  private session(keys: boolean, zeroMask: boolean): Promise<ort.InferenceSession> {
    const key = `${keys}/${zeroMask}`;
    let session = this.sessions.get(key);
    if (!session) this.sessions.set(key, session = ort.InferenceSession.create(stepGraph(keys, zeroMask).model, this.options));
    return session;
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

  private async upload(b: ort.Tensor): Promise<ort.Tensor> {
    const out = await this.uploader.run({ b });
    return out.y as ort.Tensor;
  }
}

/**
 * A step's shared inputs sliced from what the device keeps: cos_q/sin_q = rows [start, end) of the tables,
 * cos_k/sin_k = rows [0, rotated) (`keys`), mask = columns [0, end) of the zero row (`zeroMask`).
 */
function stepGraph(keys: boolean, zeroMask: boolean): ReturnType<GraphBuilder['finish']> {
  const g = new GraphBuilder('device_step_inputs');
  const cos = g.input('cos', ['P', 'hd']);
  const sin = g.input('sin', ['P', 'hd']);
  const start = g.input('start', [1], 'int64');
  const end = g.input('end', [1], 'int64');
  const rows = (t: string, from: string, to: string): string => g.op('Slice', [t, from, to, g.ints([0])]);
  g.output(rows(cos, start, end), 'cos_q', ['T', 'hd']);
  g.output(rows(sin, start, end), 'sin_q', ['T', 'hd']);
  if (keys) {
    const rotated = g.input('rotated', [1], 'int64');
    g.output(rows(cos, g.ints([0]), rotated), 'cos_k', ['R', 'hd']);
    g.output(rows(sin, g.ints([0]), rotated), 'sin_k', ['R', 'hd']);
  }
  if (zeroMask) g.output(g.op('Slice', [g.input('zeros', [1, 'Z']), g.ints([0]), end, g.ints([1])]), 'mask', [1, 'S']);
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
