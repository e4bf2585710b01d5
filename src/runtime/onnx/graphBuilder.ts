// Builds an ONNX ModelProto (opset 17, plus onnxruntime's com.microsoft domain where a node asks for it) node by
// node. Only what the runtime's graphs use is modelled. Weights travel beside the protobuf as external data held
// in memory (onnxruntime's `externalData` session option): the graph bytes never hold a second copy of them, and
// onnxruntime copies (or prepacks) each one, so the caller may drop its buffers once the session exists.
import { ProtoMessage } from './protobuf';

/** A model and the weight buffers its initializers name as external data (file name = initializer name). */
export interface OnnxGraph {
  model: Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
  /** Bytes of the weights (weight, halfWeight, bytesWeight initializers) as handed to onnxruntime. */
  weightBytes: number;
}

/** Smaller initializers stay inline: an external entry costs more than it saves. */
const EXTERNAL_MIN_BYTES = 4096;

const enum ElemType {
  FLOAT = 1,
  UINT8 = 2,
  INT64 = 7,
  FLOAT16 = 10,
}
const enum AttrType {
  FLOAT = 1,
  INT = 2,
  INTS = 7,
}

export type Dim = number | string;
export type ValueType = 'float32' | 'float16' | 'int64';
const ELEM_TYPES: Record<ValueType, ElemType> = { float32: ElemType.FLOAT, float16: ElemType.FLOAT16, int64: ElemType.INT64 };
export type Attr = number | number[] | { float: number };

export class GraphBuilder {
  private readonly nodes: ProtoMessage[] = [];
  private readonly initializers: ProtoMessage[] = [];
  private readonly inputs: ProtoMessage[] = [];
  private readonly outputs: ProtoMessage[] = [];
  private readonly externalData: OnnxGraph['externalData'] = [];
  private counter = 0;
  private weightBytes = 0;
  private readonly constants = new Map<string, string>();
  private readonly domains = new Set<string>();
  private readonly shared = new Set<string>();
  /** Prepended to the names of inputs, outputs, weights and values (one layer of several in one graph). */
  private prefix = '';

  constructor(private readonly name: string) {}

  /** Runs `body` with its inputs, outputs, weights and values named `prefix` + name; shared inputs keep theirs. */
  scoped<T>(prefix: string, body: () => T): T {
    const outer = this.prefix;
    this.prefix = prefix;
    try {
      return body();
    } finally {
      this.prefix = outer;
    }
  }

  input(name: string, dims: readonly Dim[], type: ValueType = 'float32'): string {
    this.inputs.push(valueInfo(this.prefix + name, dims, ELEM_TYPES[type]));
    return this.prefix + name;
  }

  /** An input every scope reads under its own name (angles, masks): declared once. */
  sharedInput(name: string, dims: readonly Dim[], type: ValueType = 'float32'): string {
    if (!this.shared.has(name)) {
      this.shared.add(name);
      this.inputs.push(valueInfo(name, dims, ELEM_TYPES[type]));
    }
    return name;
  }

  /** Declares `value` a graph output named `name`: through an Identity node unless the value already has that name. */
  output(value: string, name: string, dims: readonly Dim[], type: ValueType = 'float32'): void {
    if (value !== this.prefix + name) this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(this.prefix + name, dims, ELEM_TYPES[type]));
  }

  /** A float32 weight; the builder keeps a view of the data (never copied by the builder). */
  weight(name: string, data: Float32Array, dims: readonly number[]): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`weight ${name}: ${data.length} values for shape [${dims.join(', ')}]`);
    return this.initializer(name, ElemType.FLOAT, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** A float16 initializer from fp16 bit patterns (f16 weights); kept as a view like weight(). */
  halfWeight(name: string, bits: Uint16Array, dims: readonly number[]): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (bits.length !== expected) throw new Error(`weight ${name}: ${bits.length} values for shape [${dims.join(', ')}]`);
    return this.initializer(name, ElemType.FLOAT16, dims, new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
  }

  /** A uint8 initializer (packed quantised weights); kept as a view like weight(). */
  bytesWeight(name: string, data: Uint8Array, dims: readonly number[]): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`weight ${name}: ${data.length} bytes for shape [${dims.join(', ')}]`);
    return this.initializer(name, ElemType.UINT8, dims, data);
  }

  private initializer(unscoped: string, type: ElemType, dims: readonly number[], bytes: Uint8Array): string {
    const name = this.prefix + unscoped;
    const t = new ProtoMessage().packedInts(1, dims).int(2, type).string(8, name);
    this.weightBytes += bytes.byteLength;
    if (bytes.byteLength < EXTERNAL_MIN_BYTES) {
      t.bytes(9, bytes);
    } else {
      for (const [key, value] of [['location', name], ['offset', '0'], ['length', String(bytes.byteLength)]]) {
        t.message(13, new ProtoMessage().string(1, key).string(2, value));
      }
      t.int(14, 1); // data_location: EXTERNAL
      this.externalData.push({ path: name, data: bytes });
    }
    this.initializers.push(t);
    return name;
  }

  /** A shared int64 constant (shapes, axes, slice bounds). */
  ints(values: readonly number[]): string {
    const key = values.join(',');
    const existing = this.constants.get(key);
    if (existing) return existing;
    const name = `const_i64_${this.constants.size}`;
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    const t = new ProtoMessage().packedInts(1, [values.length]).int(2, ElemType.INT64).string(8, name);
    t.bytes(9, new Uint8Array(data.buffer));
    this.initializers.push(t);
    this.constants.set(key, name);
    return name;
  }

  scalar(value: number): string {
    const name = `const_f32_${this.counter++}`;
    const t = new ProtoMessage().int(2, ElemType.FLOAT).string(8, name);
    t.bytes(9, new Uint8Array(Float32Array.of(value).buffer));
    this.initializers.push(t);
    return name;
  }

  /** Adds a node with one output and returns the output's name. */
  op(type: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, outputName?: string): string {
    return this.node(type, inputs, [outputName ?? `${type.toLowerCase()}_${this.counter++}`], attrs)[0]!;
  }

  /** A node of onnxruntime's contrib operators (com.microsoft, version 1) with one output. */
  contribOp(type: string, inputs: readonly string[], attrs: Record<string, Attr> = {}): string {
    return this.node(type, inputs, [`${type.toLowerCase()}_${this.counter++}`], attrs, 'com.microsoft')[0]!;
  }

  /** Adds a node with several outputs (an empty name: an optional output left out); returns their scoped names. */
  node(type: string, inputs: readonly string[], unscoped: readonly string[], attrs: Record<string, Attr> = {}, domain = ''): readonly string[] {
    const outputs = unscoped.map((o) => (o === '' ? o : this.prefix + o));
    const n = new ProtoMessage();
    for (const i of inputs) n.string(1, i);
    for (const o of outputs) n.string(2, o);
    n.string(3, `${type}_${this.counter++}`).string(4, type);
    for (const [key, value] of Object.entries(attrs)) n.message(5, attribute(key, value));
    if (domain !== '') {
      n.string(7, domain);
      this.domains.add(domain);
    }
    this.nodes.push(n);
    return outputs;
  }

  finish(): OnnxGraph {
    const graph = new ProtoMessage();
    for (const n of this.nodes) graph.message(1, n);
    graph.string(2, this.name);
    for (const t of this.initializers) graph.message(5, t);
    for (const i of this.inputs) graph.message(11, i);
    for (const o of this.outputs) graph.message(12, o);
    const model = new ProtoMessage()
      .int(1, 8) // ir_version 8
      .string(2, 'cskv-code')
      .message(7, graph)
      .message(8, new ProtoMessage().string(1, '').int(2, 17));
    for (const domain of this.domains) model.message(8, new ProtoMessage().string(1, domain).int(2, 1));
    return { model: model.finish(), externalData: this.externalData, weightBytes: this.weightBytes };
  }
}

function attribute(name: string, value: Attr): ProtoMessage {
  const a = new ProtoMessage().string(1, name);
  if (Array.isArray(value)) return a.packedInts(8, value).int(20, AttrType.INTS);
  if (typeof value === 'number') return a.int(3, value).int(20, AttrType.INT);
  return a.float(2, value.float).int(20, AttrType.FLOAT);
}

function valueInfo(name: string, dims: readonly Dim[], type: ElemType = ElemType.FLOAT): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of dims) shape.message(1, typeof d === 'number' ? new ProtoMessage().int(1, d) : new ProtoMessage().string(2, d));
  const tensorType = new ProtoMessage().int(1, type).message(2, shape);
  return new ProtoMessage().string(1, name).message(2, new ProtoMessage().message(1, tensorType));
}
