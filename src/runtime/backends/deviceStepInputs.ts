// The inputs every layer graph of a step shares (RoPE angles, the attention mask), made on the GPU once per step
// (WebGPU backend). Fed from host memory they would cross to the device once per layer run, and two of them grow
// with the context: the mask [T, S] and, with CSKV, the angles of the compressed keys [Sc, hd] (at 128k tokens and
// hd 128, 64 MB each per layer per step). Here the RoPE tables stay on the device and each step slices them there.
// Past dynamic NTK's original context the tables change with every length: the device composes them from their
// angle-addition factors (rope.ts), about 2·sqrt(S) rows instead of S. A decode step's mask is a slice of a row
// kept there, [-inf × Z, 0 × Z], that hides the positions a sliding window has left; a prefill chunk's mask
// [T, S] goes up once per chunk (once per T tokens, against the chunk's own T·H activations).
import { ort } from '../onnx/ort';
import { GraphBuilder } from '../onnx/graphBuilder';
import type { RopeFactors, RopeTables } from '../model/rope';

/** A step's angles and mask as the host describes them. */
export interface StepInputs {
  /** The tables [positions >= start + T, hd] the angles are sliced from (uploaded when they change), or their factors. */
  rope: RopeTables | RopeFactors;
  headDim: number;
  /** The chunk's positions [start, start + T). */
  start: number;
  T: number;
  /** Positions whose keys the graph rotates ([0, rotated)), or undefined when the graphs take no cos_k/sin_k. */
  rotated: number | undefined;
  /** A decode step's (T = 1) mask hides positions [0, hidden) (a sliding window's); sliced on the device. */
  hidden: number;
  /** Any other step's additive mask [T, S], made only to go up. */
  mask: () => Float32Array;
}

export class DeviceStepInputs {
  private table: { source: RopeTables | RopeFactors; cos: ort.Tensor; sin: ort.Tensor } | undefined;
  /** [1, 2Z]: Z times -inf, then Z zeros; a decode step's mask is the slice [Z - hidden, Z - hidden + S). */
  private maskRow: ort.Tensor | undefined;
  /** One session per kind of step (with cos_k/sin_k or not, a decode step's mask or not), made when first needed. */
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private composer: Promise<ort.InferenceSession> | undefined;

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
    const table = await this.tableFor(step.rope, hd);
    // An empty slice would be a zero-sized GPU tensor: the empty cos_k/sin_k go as host tensors (nothing crosses).
    const keys = step.rotated !== undefined && step.rotated > 0;
    const decode = T === 1;
    const feeds: Record<string, ort.Tensor> = { cos: table.cos, sin: table.sin, start: int64(start), end: int64(S) };
    if (keys) feeds.rotated = int64(step.rotated!);
    if (decode) {
      const row = await this.maskRowFor(S);
      feeds.mask_row = row;
      feeds.mask_start = int64(row.dims[1]! / 2 - step.hidden);
    }
    const session = await this.session(keys, decode);
    const out = await session.run(feeds) as Record<string, ort.Tensor>;
    if (step.rotated === 0) out.cos_k = out.sin_k = new ort.Tensor('float32', new Float32Array(0), [0, hd]);
    if (!decode) out.mask = await this.upload(new ort.Tensor('float32', step.mask(), [T, S]));
    return out;
  }

  async dispose(): Promise<void> {
    for (const t of [this.table?.cos, this.table?.sin, this.maskRow]) t?.dispose();
    this.table = undefined;
    this.maskRow = undefined;
    const sessions = await Promise.all([...this.sessions.values(), ...(this.composer ? [this.composer] : [])]);
    await Promise.all([...sessions, this.uploader].map((s) => s.release()));
  }

  private session(keys: boolean, decode: boolean): Promise<ort.InferenceSession> {
    const key = `${keys}/${decode}`;
    let session = this.sessions.get(key);
    if (!session) this.sessions.set(key, session = ort.InferenceSession.create(stepGraph(keys, decode).model, this.options));
    return session;
  }

  /**
   * The RoPE tables on the device, made again only when the engine hands other ones (whole tables grow by
   * doubling; factors come with every length past dynamic NTK's original context, and are composed here).
   */
  private async tableFor(source: RopeTables | RopeFactors, hd: number): Promise<NonNullable<DeviceStepInputs['table']>> {
    if (this.table?.source !== source) {
      let cos: ort.Tensor, sin: ort.Tensor;
      if ('coarse' in source) {
        const composer = await (this.composer ??= ort.InferenceSession.create(composeGraph(hd).model, this.options));
        const part = (values: Float32Array): ort.Tensor => new ort.Tensor('float32', values, [values.length / hd, hd]);
        const out = await composer.run({
          coarse_cos: part(source.coarse.cos), coarse_sin: part(source.coarse.sin), fine_cos: part(source.fine.cos), fine_sin: part(source.fine.sin),
        });
        [cos, sin] = [out.cos as ort.Tensor, out.sin as ort.Tensor];
      } else {
        const rows = source.cos.length / hd;
        [cos, sin] = [await this.upload(new ort.Tensor('float32', source.cos, [rows, hd])), await this.upload(new ort.Tensor('float32', source.sin, [rows, hd]))];
      }
      this.table?.cos.dispose();
      this.table?.sin.dispose();
      this.table = { source, cos, sin };
    }
    return this.table;
  }

  /** The decode masks' row [1, 2Z] with Z >= `length` (doubled as the context grows). */
  private async maskRowFor(length: number): Promise<ort.Tensor> {
    const Z = (this.maskRow?.dims[1] ?? 0) / 2;
    if (Z < length) {
      const size = Math.max(length, 2 * Z, 128);
      const row = new Float32Array(2 * size);
      row.fill(-Infinity, 0, size);
      const next = await this.upload(new ort.Tensor('float32', row, [1, 2 * size]));
      this.maskRow?.dispose();
      this.maskRow = next;
    }
    return this.maskRow!;
  }

  private async upload(b: ort.Tensor): Promise<ort.Tensor> {
    const out = await this.uploader.run({ b });
    return out.y as ort.Tensor;
  }
}

/**
 * A step's shared inputs sliced from what the device keeps: cos_q/sin_q = rows [start, end) of the tables,
 * cos_k/sin_k = rows [0, rotated) (`keys`), a decode step's mask = columns [mask_start, mask_start + end) of the
 * mask row (`decode`).
 */
function stepGraph(keys: boolean, decode: boolean): ReturnType<GraphBuilder['finish']> {
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
  if (decode) {
    const maskStart = g.input('mask_start', [1], 'int64');
    g.output(g.op('Slice', [g.input('mask_row', [1, 'Z2']), maskStart, g.op('Add', [maskStart, end]), g.ints([1])]), 'mask', [1, 'S']);
  }
  return g.finish();
}

/** RoPE tables [Q·B, hd] from their factors (rope.ts's ropeTableFactors): row q·B + r by angle addition. */
function composeGraph(hd: number): ReturnType<GraphBuilder['finish']> {
  const g = new GraphBuilder('rope_compose');
  const coarse = (name: string): string => g.op('Unsqueeze', [g.input(name, ['Q', hd]), g.ints([1])]);
  const fine = (name: string): string => g.op('Unsqueeze', [g.input(name, ['B', hd]), g.ints([0])]);
  const [cc, cs, fc, fs] = [coarse('coarse_cos'), coarse('coarse_sin'), fine('fine_cos'), fine('fine_sin')];
  const rows = (t: string): string => g.op('Reshape', [t, g.ints([-1, hd])]);
  g.output(rows(g.op('Sub', [g.op('Mul', [cc, fc]), g.op('Mul', [cs, fs])])), 'cos', ['P', hd]);
  g.output(rows(g.op('Add', [g.op('Mul', [cs, fc]), g.op('Mul', [cc, fs])])), 'sin', ['P', hd]);
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
