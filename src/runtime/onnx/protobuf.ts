// The few protobuf wire-format rules an ONNX ModelProto needs: varints, length-delimited fields and nested
// messages. Messages are kept as lists of chunks so that megabytes of weights are copied once, at the end.

export class ProtoMessage {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  get byteLength(): number {
    return this.size;
  }

  private push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
  }

  private key(field: number, wireType: number): void {
    this.push(varint(field * 8 + wireType));
  }

  int(field: number, value: number): this {
    this.key(field, 0);
    this.push(varint(value));
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.push(varint(value.byteLength));
    this.push(value);
    return this;
  }

  message(field: number, value: ProtoMessage): this {
    this.key(field, 2);
    this.push(varint(value.size));
    for (const c of value.chunks) this.push(c);
    return this;
  }

  /** Packed repeated varints (proto3 default for repeated scalars). */
  packedInts(field: number, values: readonly number[]): this {
    const body = new ProtoMessage();
    for (const v of values) body.push(varint(v));
    this.key(field, 2);
    this.push(varint(body.size));
    for (const c of body.chunks) this.push(c);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

/** Varint of a non-negative or negative (two's complement, 10 bytes) safe integer. */
function varint(value: number): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Uint8Array.from(bytes);
}
