// The project's GGUF v3 writer (tests and benchmarks; the product only reads GGUF), and a converter of Hugging Face
// model directories to GGUF that follows llama.cpp's convert_hf_to_gguf.py: the same metadata keys, tensor names,
// the q/k row permutation of the llama architecture, 1-D tensors kept F32, and Q8_0 quantised as ggml's
// quantize_row_q8_0_ref does. Written independently of the runtime's reader so that the two check each other;
// llama.cpp reads what it writes (test/runtime/gguf.test.ts). Tensors are encoded and written one at a time, so a
// benchmark-sized model is never held whole.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { floatToHalfBits, halfBitsToFloat } from '../../src/runtime/half';
import { SafetensorsFile } from '../../src/runtime/safetensors';
import { bfloat16Bytes } from '../../src/runtime/safetensorsWriter';

export type MetadataValue =
  | ['u16', number] | ['u32', number] | ['i32', number] | ['u64', number] | ['f32', number] | ['bool', boolean] | ['string', string]
  | ['strings', readonly string[]] | ['f32s', readonly number[]] | ['i32s', readonly number[]];

export interface TensorToWriteGguf {
  name: string;
  /** ggml type id (0 F32, 1 F16, 8 Q8_0, 30 BF16, ...). */
  typeId: number;
  /** ggml order: innermost dimension first. */
  dims: number[];
  /**
   * The stored bytes, or a function that gives them when the tensor is written (its size then follows from
   * typeId and dims, so it must be a type this writer encodes).
   */
  data: Uint8Array | (() => Uint8Array);
}

const TYPE_ID = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10 } as const;

/** [values, bytes] per block of the ggml types this file encodes: F32, F16, Q8_0, Q4_K, Q6_K, BF16. */
const BLOCKS: Record<number, readonly [number, number]> = { 0: [1, 4], 1: [1, 2], 8: [32, 34], 12: [256, 144], 14: [256, 210], 30: [1, 2] };

function storedBytes(t: TensorToWriteGguf): number {
  if (typeof t.data !== 'function') return t.data.length;
  const block = BLOCKS[t.typeId];
  if (!block) throw new Error(`tensor ${t.name}: give the bytes of ggml type ${t.typeId}, this writer cannot size them`);
  if (t.dims[0]! % block[0] !== 0) throw new Error(`tensor ${t.name}: rows of ${t.dims[0]} values are not whole blocks of ${block[0]}`);
  return (t.dims.reduce((a, b) => a * b, 1) / block[0]) * block[1];
}

class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v: number): void { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v: number): void { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  concat(): Buffer { return Buffer.concat(this.parts); }
}

/** The file in order: header (metadata, tensor infos), then each tensor's data, each part padded to `alignment`. */
function* ggufParts(metadata: ReadonlyArray<[string, MetadataValue]>, tensors: readonly TensorToWriteGguf[], alignment = 32): Generator<Uint8Array> {
  const h = new Bytes();
  h.push(Buffer.from('GGUF', 'latin1'));
  h.u32(3);
  h.u64(tensors.length);
  h.u64(metadata.length);
  for (const [key, [type, value]] of metadata) {
    h.str(key);
    switch (type) {
      case 'u16': h.u32(TYPE_ID.u16); h.push(Buffer.from(Uint16Array.of(value).buffer)); break;
      case 'u32': h.u32(TYPE_ID.u32); h.u32(value); break;
      case 'i32': h.u32(TYPE_ID.i32); h.i32(value); break;
      case 'u64': h.u32(TYPE_ID.u64); h.u64(value); break;
      case 'f32': h.u32(TYPE_ID.f32); h.f32(value); break;
      case 'bool': h.u32(TYPE_ID.bool); h.push(Buffer.from([value ? 1 : 0])); break;
      case 'string': h.u32(TYPE_ID.string); h.str(value); break;
      case 'strings': h.u32(TYPE_ID.array); h.u32(TYPE_ID.string); h.u64(value.length); value.forEach((s) => h.str(s)); break;
      case 'f32s': h.u32(TYPE_ID.array); h.u32(TYPE_ID.f32); h.u64(value.length); value.forEach((v) => h.f32(v)); break;
      case 'i32s': h.u32(TYPE_ID.array); h.u32(TYPE_ID.i32); h.u64(value.length); value.forEach((v) => h.i32(v)); break;
    }
  }
  const sizes = tensors.map(storedBytes);
  let offset = 0;
  tensors.forEach((t, i) => {
    h.str(t.name);
    h.u32(t.dims.length);
    t.dims.forEach((d) => h.u64(d));
    h.u32(t.typeId);
    h.u64(offset);
    offset += Math.ceil(sizes[i]! / alignment) * alignment;
  });
  const pad = (n: number): Buffer => Buffer.alloc((alignment - (n % alignment)) % alignment);
  const header = h.concat();
  yield header;
  yield pad(header.length);
  for (const [i, t] of tensors.entries()) {
    const data = typeof t.data === 'function' ? t.data() : t.data;
    if (data.length !== sizes[i]) throw new Error(`tensor ${t.name}: ${data.length} bytes, its type and shape need ${sizes[i]}`);
    yield data;
    yield pad(data.length);
  }
}

export function ggufBytes(metadata: ReadonlyArray<[string, MetadataValue]>, tensors: readonly TensorToWriteGguf[], alignment = 32): Buffer {
  return Buffer.concat([...ggufParts(metadata, tensors, alignment)]);
}

export function writeGguf(file: string, metadata: ReadonlyArray<[string, MetadataValue]>, tensors: readonly TensorToWriteGguf[]): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const part of ggufParts(metadata, tensors)) fs.writeSync(fd, part);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What llama-gguf-split --split writes: PREFIX-0000k-of-0000n.gguf, every part a GGUF with split.no (0-based),
 * split.count and split.tensors.count, the first part also holding all the model's metadata, the tensors dealt
 * out in order (`firstPartTensors` to the first, the rest evenly). Returns the parts' paths.
 */
export function writeSplitGguf(prefix: string, parts: number, metadata: ReadonlyArray<[string, MetadataValue]>, tensors: readonly TensorToWriteGguf[], firstPartTensors = Math.ceil(tensors.length / parts)): string[] {
  const files: string[] = [];
  const rest = tensors.length - firstPartTensors;
  let from = 0;
  for (let k = 0; k < parts; k++) {
    const to = k === 0 ? firstPartTensors : firstPartTensors + Math.ceil((rest * k) / (parts - 1));
    const split: Array<[string, MetadataValue]> = [['split.no', ['u16', k]], ['split.count', ['u16', parts]], ['split.tensors.count', ['i32', tensors.length]]];
    const file = `${prefix}-${String(k + 1).padStart(5, '0')}-of-${String(parts).padStart(5, '0')}.gguf`;
    writeGguf(file, k === 0 ? [...metadata, ...split] : split, tensors.slice(from, to));
    files.push(file);
    from = to;
  }
  return files;
}

// ---- quantisers (ggml's reference rounding) ----

export function f16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalfBits(values[i]!);
  return new Uint8Array(out.buffer);
}

/** quantize_row_q8_0_ref: per 32 values d = max|x| / 127 (stored as f16), q = round(x / d) away from zero. */
export function q8_0Bytes(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new Error('Q8_0 needs a multiple of 32 values');
  const out = Buffer.alloc((values.length / 32) * 34);
  for (let b = 0; b < values.length / 32; b++) {
    const block = values.subarray(b * 32, b * 32 + 32);
    const amax = block.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    out.writeUInt16LE(floatToHalfBits(d), b * 34);
    for (let j = 0; j < 32; j++) {
      const x = Math.fround(block[j]! * id);
      out.writeInt8(Math.sign(x) * Math.round(Math.abs(x)), b * 34 + 2 + j);
    }
  }
  return out;
}

/** The values a Q8_0 tensor stands for: f16(d) * q, computed here independently of the runtime's dequantiser. */
export function q8_0Values(bytes: Uint8Array): Float32Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.length / 34) * 32);
  for (let b = 0; b < out.length / 32; b++) {
    const d = halfBitsToFloat(buf.readUInt16LE(b * 34));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = d * buf.readInt8(b * 34 + 2 + j);
  }
  return out;
}

export function bf16Values(bytes: Uint8Array): Float32Array {
  const halves = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return new Float32Array(Uint32Array.from(halves, (h) => h << 16).buffer);
}

export function f16Values(bytes: Uint8Array): Float32Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.length / 2 }, (_, i) => halfBitsToFloat(buf.readUInt16LE(2 * i)));
}

/**
 * Q4_K blocks by a plain min/max rule (not llama.cpp's search, which only picks better scales): per 32 values a
 * scale and a min, both stored as 6-bit multiples of the super-block's d and dmin, and 4-bit codes.
 */
export function q4_KBytes(values: Float32Array): Uint8Array {
  if (values.length % 256 !== 0) throw new Error('Q4_K needs a multiple of 256 values');
  const out = Buffer.alloc((values.length / 256) * 144);
  for (let b = 0; b < values.length / 256; b++) {
    const x = values.subarray(b * 256, b * 256 + 256);
    const scales: number[] = [], mins: number[] = [];
    for (let j = 0; j < 8; j++) {
      const sub = x.subarray(j * 32, j * 32 + 32);
      const lo = Math.min(0, ...sub), hi = Math.max(...sub);
      scales.push((hi - lo) / 15);
      mins.push(-lo);
    }
    const d = halfBitsToFloat(floatToHalfBits(Math.max(...scales) / 63));
    const dmin = halfBitsToFloat(floatToHalfBits(Math.max(...mins) / 63));
    const sc = scales.map((v) => (d ? Math.min(63, Math.round(v / d)) : 0));
    const m = mins.map((v) => (dmin ? Math.min(63, Math.round(v / dmin)) : 0));
    const o = b * 144;
    out.writeUInt16LE(floatToHalfBits(d), o);
    out.writeUInt16LE(floatToHalfBits(dmin), o + 2);
    for (let j = 0; j < 8; j++) {
      if (j < 4) {
        out[o + 4 + j] |= sc[j]!;
        out[o + 4 + j + 4] |= m[j]!;
      } else {
        out[o + 4 + j + 4] = (sc[j]! & 0x0f) | ((m[j]! & 0x0f) << 4);
        out[o + 4 + j - 4] |= (sc[j]! >> 4) << 6;
        out[o + 4 + j] |= (m[j]! >> 4) << 6;
      }
    }
    for (let j = 0; j < 8; j++) {
      const step = d * sc[j]!, offset = dmin * m[j]!;
      for (let l = 0; l < 32; l++) {
        const q = step ? Math.max(0, Math.min(15, Math.round((x[j * 32 + l]! + offset) / step))) : 0;
        const at = o + 16 + (j >> 1) * 32 + l;
        out[at] |= j % 2 === 0 ? q : q << 4;
      }
    }
  }
  return out;
}

/** Q6_K blocks: per 16 values an int8 scale (a multiple of the super-block's d), 6-bit codes centred on 32. */
export function q6_KBytes(values: Float32Array): Uint8Array {
  if (values.length % 256 !== 0) throw new Error('Q6_K needs a multiple of 256 values');
  const out = Buffer.alloc((values.length / 256) * 210);
  for (let b = 0; b < values.length / 256; b++) {
    const x = values.subarray(b * 256, b * 256 + 256);
    const scales = Array.from({ length: 16 }, (_, j) => Math.max(...x.subarray(j * 16, j * 16 + 16).map(Math.abs)) / 31);
    const d = halfBitsToFloat(floatToHalfBits(Math.max(...scales) / 127));
    const sc = scales.map((v) => (d ? Math.min(127, Math.round(v / d)) : 0));
    const o = b * 210;
    out.writeUInt16LE(floatToHalfBits(d), o + 208);
    sc.forEach((v, j) => out.writeInt8(v, o + 192 + j));
    for (let i = 0; i < 256; i++) {
      const step = d * sc[i >> 4]!;
      const q = (step ? Math.max(-32, Math.min(31, Math.round(x[i]! / step))) : 0) + 32;
      // Element i = half * 128 + quarter * 32 + l: low nibble in ql, two high bits in qh (see ggmlDequant's Q6_K).
      const half = i >> 7, quarter = (i >> 5) & 3, l = i & 31;
      const ql = o + half * 64 + (quarter & 1) * 32 + l;
      out[ql] |= quarter < 2 ? q & 0x0f : (q & 0x0f) << 4;
      out[o + 128 + half * 32 + l] |= (q >> 4) << (2 * quarter);
    }
  }
  return out;
}

// ---- the Hugging Face converter ----

export type GgufWeightType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_K' | 'Q6_K';

/** convert_hf_to_gguf's LlamaModel.permute: rows (head, half, j) -> (head, j, half). */
export function permuteRows(values: Float32Array, rows: number, heads: number): Float32Array {
  const cols = values.length / rows;
  const headDim = rows / heads;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let j = 0; j < headDim / 2; j++) {
        const from = (h * headDim + s * (headDim / 2) + j) * cols;
        const to = (h * headDim + 2 * j + s) * cols;
        out.set(values.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

const TYPE_IDS: Record<GgufWeightType, number> = { F32: 0, F16: 1, BF16: 30, Q8_0: 8, Q4_K: 12, Q6_K: 14 };

function encode(type: GgufWeightType, values: Float32Array): Uint8Array {
  switch (type) {
    case 'F32': return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'F16': return f16Bytes(values);
    case 'BF16': return bfloat16Bytes(values);
    case 'Q8_0': return q8_0Bytes(values);
    case 'Q4_K': return q4_KBytes(values);
    case 'Q6_K': return q6_KBytes(values);
  }
}

/** The values stored bytes stand for, computed here independently of the runtime's dequantisers (no K-quants). */
function decode(type: Exclude<GgufWeightType, 'Q4_K' | 'Q6_K'>, bytes: Uint8Array): Float32Array {
  switch (type) {
    case 'F32': return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    case 'F16': return f16Values(bytes);
    case 'BF16': return bf16Values(bytes);
    case 'Q8_0': return q8_0Values(bytes);
  }
}

const LAYER_TENSORS: Record<string, string> = {
  input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
  'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
};

export interface ConvertedTensor {
  hfName: string;
  /** The values the GGUF tensor stands for, in the Hugging Face row order: what a loader must give back. */
  values: Float32Array;
}

export interface ConvertOptions {
  /** Metadata after the model's own (a tokenizer's, usually). */
  metadata?: ReadonlyArray<[string, MetadataValue]>;
  /** Written as llama-gguf-split parts instead; `outFile` is then the first part's name. */
  split?: { parts: number; firstPartTensors?: number };
  /** Return each tensor's values (the default); a benchmark-sized model leaves this off to hold one tensor at a time. */
  values?: boolean;
}

/**
 * Writes the Hugging Face model in `modelDir` (Llama, Mistral or Qwen2) as a GGUF file of `type` (2-D weights in
 * that type, 1-D tensors F32) and returns, per tensor, the values the file stands for.
 */
export function convertToGguf(modelDir: string, outFile: string, type: GgufWeightType, options: ConvertOptions = {}): ConvertedTensor[] {
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
  const hfArch: string = config.architectures[0];
  const arch = hfArch === 'Qwen2ForCausalLM' ? 'qwen2' : 'llama';
  const heads: number = config.num_attention_heads;
  const kvHeads: number = config.num_key_value_heads ?? heads;
  const headDim: number = config.head_dim ?? config.hidden_size / heads;
  const rope = config.rope_parameters ?? { ...(config.rope_scaling ?? {}), rope_theta: config.rope_theta ?? 10000 };
  const ropeType: string = rope.rope_type ?? rope.type ?? 'default';
  const metadata: Array<[string, MetadataValue]> = [
    ['general.architecture', ['string', arch]],
    ['general.name', ['string', path.basename(modelDir)]],
    ['general.file_type', ['u32', { F32: 0, F16: 1, BF16: 32, Q8_0: 7, Q4_K: 15, Q6_K: 18 }[type]]],
    [`${arch}.context_length`, ['u32', config.max_position_embeddings]],
    [`${arch}.embedding_length`, ['u32', config.hidden_size]],
    [`${arch}.block_count`, ['u32', config.num_hidden_layers]],
    [`${arch}.feed_forward_length`, ['u32', config.intermediate_size]],
    [`${arch}.attention.head_count`, ['u32', heads]],
    [`${arch}.attention.head_count_kv`, ['u32', kvHeads]],
    [`${arch}.rope.freq_base`, ['f32', rope.rope_theta]],
    [`${arch}.attention.layer_norm_rms_epsilon`, ['f32', config.rms_norm_eps]],
    [`${arch}.rope.dimension_count`, ['u32', headDim]],
    [`${arch}.vocab_size`, ['u32', config.vocab_size]],
  ];
  if (config.head_dim) metadata.push([`${arch}.attention.key_length`, ['u32', headDim]], [`${arch}.attention.value_length`, ['u32', headDim]]);
  if (config.sliding_window && hfArch === 'MistralForCausalLM') metadata.push([`${arch}.attention.sliding_window`, ['u32', config.sliding_window]]);
  if (ropeType === 'linear' || ropeType === 'yarn') {
    metadata.push([`${arch}.rope.scaling.type`, ['string', ropeType]], [`${arch}.rope.scaling.factor`, ['f32', rope.factor]]);
    if (rope.original_max_position_embeddings) metadata.push([`${arch}.rope.scaling.original_context_length`, ['u32', rope.original_max_position_embeddings]]);
  } else if (ropeType !== 'default' && ropeType !== 'llama3') {
    throw new Error(`GGUF has no way to write RoPE type ${ropeType}`);
  }
  metadata.push(...(options.metadata ?? []));

  const tensors: TensorToWriteGguf[] = [];
  const converted: ConvertedTensor[] = [];
  const files = fs.readdirSync(modelDir).filter((f) => /^model.*\.safetensors$/.test(f)).map((f) => SafetensorsFile.open(path.join(modelDir, f)));
  try {
    for (const st of files) {
      for (const [hfName, info] of st.tensors) {
        const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
        let name: string;
        if (hfName === 'model.embed_tokens.weight') name = 'token_embd.weight';
        else if (hfName === 'model.norm.weight') name = 'output_norm.weight';
        else if (hfName === 'lm_head.weight') name = 'output.weight';
        else if (m && LAYER_TENSORS[m[2]!]) name = `blk.${m[1]}.${LAYER_TENSORS[m[2]!]}.${m[3]}`;
        else throw new Error(`no GGUF name for ${hfName}`);
        const rows = info.shape[0]!;
        const cols = info.shape.length === 2 ? info.shape[1]! : 1;
        const permuted = arch === 'llama' && m && (m[2] === 'self_attn.q_proj' || m[2] === 'self_attn.k_proj');
        // 1-D tensors stay F32, as convert_hf_to_gguf keeps them.
        const stored: GgufWeightType = info.shape.length === 2 ? type : 'F32';
        tensors.push({
          name,
          typeId: TYPE_IDS[stored],
          dims: info.shape.length === 2 ? [cols, rows] : [rows],
          data: () => {
            const values = st.readFloat32(hfName);
            const data = encode(stored, permuted ? permuteRows(values, rows, m[2] === 'self_attn.q_proj' ? heads : kvHeads) : values);
            // K-quant files are checked against llama.cpp (test/tools), not here: their values stay the original ones.
            if (options.values !== false) {
              converted.push({ hfName, values: stored === 'Q4_K' || stored === 'Q6_K' ? values : decode(stored, permuted ? encode(stored, values) : data) });
            }
            return data;
          },
        });
      }
    }
    if (ropeType === 'llama3') {
      // convert_hf_to_gguf's LlamaModel.generate_extra_tensors: per-frequency divisors of Llama 3's rule.
      const factors: number[] = [];
      const lowWavelen = rope.original_max_position_embeddings / rope.low_freq_factor;
      const highWavelen = rope.original_max_position_embeddings / rope.high_freq_factor;
      for (let i = 0; i < headDim; i += 2) {
        const freq = 1 / rope.rope_theta ** (i / headDim);
        const wavelen = (2 * Math.PI) / freq;
        if (wavelen < highWavelen) factors.push(1);
        else if (wavelen > lowWavelen) factors.push(rope.factor);
        else {
          const smooth = (rope.original_max_position_embeddings / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
          factors.push(1 / ((1 - smooth) / rope.factor + smooth));
        }
      }
      tensors.push({ name: 'rope_freqs.weight', typeId: 0, dims: [factors.length], data: new Uint8Array(Float32Array.from(factors).buffer) });
    }
    if (options.split) writeSplitGguf(outFile.replace(/-00001-of-\d{5}\.gguf$/, ''), options.split.parts, metadata, tensors, options.split.firstPartTensors);
    else writeGguf(outFile, metadata, tensors);
  } finally {
    for (const f of files) f.close();
  }
  return converted;
}

// ---- tokenizer metadata, as convert_hf_to_gguf writes it from a Hugging Face tokenizer.json ----

/**
 * tokenizer.ggml.* metadata for the tokenizer in `dir`. "gpt2" (byte-level BPE): tokens by id, types (added
 * special tokens control, other added tokens user-defined), merges as "a b". "llama" (SentencePiece): tokens,
 * scores and types as llama.cpp's SentencePiece vocabulary has them — byte tokens <0xNN> typed byte, <unk>
 * unknown, other added tokens control, and for ordinary tokens the SentencePiece BPE score. tokenizer.json keeps
 * no scores, but its merges list is the pieces in score order (transformers sorted them so), so a piece's score is
 * taken as minus the rank of the first merge that makes it; pieces no merge makes (single characters) score 0.
 */
export function tokenizerMetadata(dir: string, model: 'gpt2' | 'llama', pre?: string): Array<[string, MetadataValue]> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const byId: string[] = [];
  for (const [t, id] of Object.entries(json.model.vocab as Record<string, number>)) byId[id] = t;
  const added = new Map<number, { content: string; special: boolean }>();
  for (const a of json.added_tokens) {
    byId[a.id] = a.content;
    added.set(a.id, a);
  }
  const types = byId.map((t, id) => {
    const a = added.get(id);
    if (model === 'llama') {
      if (/^<0x[0-9A-F]{2}>$/.test(t)) return 6;
      if (t === json.model.unk_token) return 2;
      if (a) return 3;
      return 1;
    }
    return a ? (a.special ? 3 : 4) : 1;
  });
  const content = (v: unknown): string | undefined => (typeof v === 'string' ? v : (v as { content?: string } | null)?.content);
  const idOf = (v: unknown): number | undefined => {
    const c = content(v);
    return c === undefined ? undefined : byId.indexOf(c);
  };
  const md: Array<[string, MetadataValue]> = [
    ['tokenizer.ggml.model', ['string', model]],
    ['tokenizer.ggml.tokens', ['strings', byId]],
    ['tokenizer.ggml.token_type', ['i32s', types]],
  ];
  if (pre) md.push(['tokenizer.ggml.pre', ['string', pre]]);
  if (model === 'gpt2') {
    md.push(['tokenizer.ggml.merges', ['strings', (json.model.merges as Array<string | [string, string]>).map((m) => (Array.isArray(m) ? m.join(' ') : m))]]);
  } else {
    const rank = new Map<string, number>();
    (json.model.merges as Array<string | [string, string]>).forEach((m, i) => {
      const piece = Array.isArray(m) ? m.join('') : m.replace(' ', '');
      if (!rank.has(piece)) rank.set(piece, i);
    });
    md.push(['tokenizer.ggml.scores', ['f32s', byId.map((t, id) => (types[id] === 1 && rank.has(t) ? -rank.get(t)! : 0))]]);
  }
  const ids: Array<[string, unknown]> = [['bos', config.bos_token], ['eos', config.eos_token], ['unknown', config.unk_token], ['padding', config.pad_token]];
  for (const [key, token] of ids) {
    const id = idOf(token);
    if (id !== undefined && id >= 0) md.push([`tokenizer.ggml.${key}_token_id`, ['u32', id]]);
  }
  if (typeof config.add_bos_token === 'boolean') md.push(['tokenizer.ggml.add_bos_token', ['bool', config.add_bos_token]]);
  if (typeof config.add_eos_token === 'boolean') md.push(['tokenizer.ggml.add_eos_token', ['bool', config.add_eos_token]]);
  if (typeof config.chat_template === 'string') md.push(['tokenizer.chat_template', ['string', config.chat_template]]);
  return md;
}

/** GPT-2's byte-to-character table: printable bytes map to themselves, the rest to U+0100 onwards. */
function byteLevelAlphabet(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

/**
 * A byte-level tokenizer without merges: one token per byte, then placeholder tokens up to `vocabSize` (the
 * fixtures' vocabulary is exactly the 256 bytes; a benchmark model's is a real model's size, fed token ids directly).
 */
export function byteTokenizerMetadata(vocabSize = 256): Array<[string, MetadataValue]> {
  const tokens = [...byteLevelAlphabet(), ...Array.from({ length: vocabSize - 256 }, (_, i) => `<t${256 + i}>`)];
  return [
    ['tokenizer.ggml.model', ['string', 'gpt2']], ['tokenizer.ggml.pre', ['string', 'default']],
    ['tokenizer.ggml.tokens', ['strings', tokens]], ['tokenizer.ggml.merges', ['strings', []]],
    ['tokenizer.ggml.eos_token_id', ['u32', 10]],
  ];
}
