// The tensors of a GGUF model under the Hugging Face names the engine asks for, in the same in-memory form the
// safetensors path gives: float32 from readFloat32 (quantised types dequantised by ggmlDequant), and readBytes
// in the file's dtype for F32/F16/BF16 or as float32 bytes for quantised types.
// llama.cpp's converter permutes the rows of q_proj and k_proj of the llama architecture (interleaved rotary
// pairs instead of rotate-half halves); they are permuted back here so the engine's rotate-half RoPE applies.
import { ModelFormatError, UnsupportedError } from '../errors';
import { type BlockQuantised, blockwiseFromQ8_0 } from '../onnx/blockQuantizer';
import type { TensorInfo } from '../safetensors';
import { LOADABLE_GGML_TYPES, canDequantise, dequantise } from './ggmlDequant';
import type { ModelConfig } from './config';
import { ggufModelConfig } from './ggufConfig';
import { GgufFile, type GgufTensor } from './ggufFile';
import { type ModelWeights, type StoredBlocks, checkRows } from './weights';

const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};

const LAYER_NAMES: Readonly<Record<string, string>> = {
  attn_norm: 'input_layernorm', ffn_norm: 'post_attention_layernorm',
  attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
};

/** The Hugging Face name of a GGUF tensor, or undefined for tensors the engine does not take (rope_freqs). */
export function huggingFaceName(ggufName: string): string | undefined {
  if (GLOBAL_NAMES[ggufName]) return GLOBAL_NAMES[ggufName];
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(ggufName);
  const mapped = m && LAYER_NAMES[m[2]!];
  return mapped ? `model.layers.${m[1]}.${mapped}.${m[3]}` : undefined;
}

export class GgufWeights implements ModelWeights {
  private readonly byName = new Map<string, GgufTensor>();
  /** Rows of these tensors are permuted back: HF name -> heads. */
  private readonly permuted = new Map<string, number>();

  private constructor(private readonly gguf: GgufFile, readonly config: ModelConfig) {
    for (const tensor of gguf.tensors.values()) {
      const name = huggingFaceName(tensor.name);
      if (name) this.byName.set(name, tensor);
    }
    if (config.architecture === 'LlamaForCausalLM') {
      for (let i = 0; i < config.layers; i++) {
        for (const [kind, heads] of [['q', config.heads], ['k', config.kvHeads]] as const) {
          for (const part of ['weight', 'bias']) this.permuted.set(`model.layers.${i}.self_attn.${kind}_proj.${part}`, heads);
        }
      }
    }
  }

  get describedBy(): string {
    return this.gguf.path;
  }

  static open(file: string): GgufWeights {
    const gguf = GgufFile.open(file);
    try {
      return new GgufWeights(gguf, ggufModelConfig(gguf));
    } catch (err) {
      gguf.close();
      throw err;
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  private tensor(name: string): GgufTensor {
    const tensor = this.byName.get(name);
    if (!tensor) throw new ModelFormatError(this.gguf.path, `missing tensor for "${name}"`);
    if (!canDequantise(tensor.type)) {
      throw new UnsupportedError(this.gguf.path, `tensor "${tensor.name}" has type ${tensor.type.name}; the types that load are ${LOADABLE_GGML_TYPES.join(', ')}`);
    }
    return tensor;
  }

  /** The tensor as readBytes gives it: F32/F16/BF16 as stored, quantised types as F32. */
  info(name: string): TensorInfo {
    const tensor = this.tensor(name);
    const dtype = ['F32', 'F16', 'BF16'].includes(tensor.type.name) ? tensor.type.name : 'F32';
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    return { name, dtype, shape: tensor.shape, offset: tensor.offset, byteLength: elements * (dtype === 'F32' ? 4 : 2) };
  }

  readFloat32(name: string, shape: readonly number[]): Float32Array {
    const tensor = this.tensor(name);
    this.checkShape(name, tensor, shape);
    return dequantise(tensor.type, this.rawBytes(name, tensor), tensor.shape.reduce((a, b) => a * b, 1));
  }

  private checkShape(name: string, tensor: GgufTensor, shape: readonly number[]): void {
    if (shape.length !== tensor.shape.length || shape.some((d, i) => d !== tensor.shape[i])) {
      throw new ModelFormatError(this.gguf.path, `tensor "${tensor.name}" (${name}) has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  }

  readBytes(name: string): Uint8Array {
    const tensor = this.tensor(name);
    const raw = this.rawBytes(name, tensor);
    if (this.info(name).dtype === tensor.type.name) return raw;
    const values = dequantise(tensor.type, raw, tensor.shape.reduce((a, b) => a * b, 1));
    return new Uint8Array(values.buffer);
  }

  readRows(name: string, first: number, count: number): Float32Array {
    const tensor = this.tensor(name);
    const rows = checkRows(this.gguf.path, { name, shape: tensor.shape }, first, count);
    const rowBytes = tensor.byteLength / rows;
    if (this.permuted.has(name)) throw new Error(`rows of "${name}" (permuted by llama.cpp's converter) are only read whole`);
    return dequantise(tensor.type, this.gguf.readBytes(tensor, first * rowBytes, count * rowBytes), count * tensor.shape[1]!);
  }

  readStoredBlocks(name: string, shape: readonly [number, number]): StoredBlocks | undefined {
    const tensor = this.tensor(name);
    if (['F32', 'F16', 'BF16'].includes(tensor.type.name)) return undefined;
    this.checkShape(name, tensor, shape);
    return { type: tensor.type.name, bytes: this.rawBytes(name, tensor) };
  }

  readQ8Blocks(name: string, shape: readonly [number, number]): BlockQuantised | undefined {
    const tensor = this.tensor(name);
    if (tensor.type.name !== 'Q8_0') return undefined;
    this.checkShape(name, tensor, shape);
    return blockwiseFromQ8_0(this.rawBytes(name, tensor), shape[0], shape[1]);
  }

  /** The stored bytes with llama's q/k row permutation undone (rows are whole blocks, so this works on any type). */
  private rawBytes(name: string, tensor: GgufTensor): Uint8Array {
    const bytes = this.gguf.readBytes(tensor);
    const heads = this.permuted.get(name);
    return heads === undefined ? bytes : unpermuteRows(bytes, tensor.shape[0]!, heads, tensor.name, this.gguf.path);
  }

  close(): void {
    this.gguf.close();
  }
}

/**
 * llama.cpp's converter writes HF row (h, s, j) of a head — half s of the rotary pairs, index j — at GGUF row
 * h * headDim + 2j + s. This puts every row back at h * headDim + s * headDim/2 + j.
 */
export function unpermuteRows(bytes: Uint8Array, rows: number, heads: number, tensorName: string, file: string): Uint8Array {
  if (rows % heads !== 0 || (rows / heads) % 2 !== 0) {
    throw new ModelFormatError(file, `tensor "${tensorName}": ${rows} rows do not split into ${heads} heads of even size`);
  }
  const rowBytes = bytes.byteLength / rows;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Uint8Array(bytes.byteLength);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const from = (h * headDim + 2 * j + s) * rowBytes;
        const to = (h * headDim + s * half + j) * rowBytes;
        out.set(bytes.subarray(from, from + rowBytes), to);
      }
    }
  }
  return out;
}
