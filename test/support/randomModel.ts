// A model directory of a given shape with random weights, for benchmarks (speed and memory do not depend on
// the values), plus cskv factor files with random orthonormal bases of a given density.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bfloat16Bytes, float32Bytes, writeSafetensors, type TensorToWrite } from '../../src/runtime/safetensorsWriter';
import { positiveUniform } from '../../src/runtime/random';

export interface ModelShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
}

/** Qwen2.5-0.5B: the CPU benchmark's yardstick. */
export const QWEN25_05B: ModelShape = { hidden: 896, layers: 24, heads: 14, kvHeads: 2, headDim: 64, intermediate: 4864, vocab: 151936 };

class Gaussian {
  private readonly uniform: () => number;
  constructor(seed: number) {
    this.uniform = positiveUniform(seed);
  }
  fill(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(this.uniform())) * std;
      const a = 2 * Math.PI * this.uniform();
      out[i] = r * Math.cos(a);
      if (i + 1 < n) out[i + 1] = r * Math.sin(a);
    }
    return out;
  }
}

export function writeRandomModel(dir: string, s: ModelShape, seed = 1): void {
  fs.mkdirSync(dir, { recursive: true });
  const g = new Gaussian(seed);
  const t: Record<string, TensorToWrite> = {};
  const matrix = (rows: number, cols: number): TensorToWrite => ({ dtype: 'BF16', shape: [rows, cols], data: () => bfloat16Bytes(g.fill(rows * cols, 1 / Math.sqrt(cols))) });
  const vector = (n: number, around: number, spread: number): TensorToWrite => ({ dtype: 'BF16', shape: [n], data: () => bfloat16Bytes(g.fill(n, spread).map((x) => x + around)) });
  const Q = s.heads * s.headDim, D = s.kvHeads * s.headDim;
  t['model.embed_tokens.weight'] = { dtype: 'BF16', shape: [s.vocab, s.hidden], data: () => bfloat16Bytes(g.fill(s.vocab * s.hidden, 1)) };
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    t[`${p}input_layernorm.weight`] = vector(s.hidden, 1, 0.1);
    t[`${p}post_attention_layernorm.weight`] = vector(s.hidden, 1, 0.1);
    t[`${p}self_attn.q_proj.weight`] = matrix(Q, s.hidden);
    t[`${p}self_attn.k_proj.weight`] = matrix(D, s.hidden);
    t[`${p}self_attn.v_proj.weight`] = matrix(D, s.hidden);
    t[`${p}self_attn.q_proj.bias`] = vector(Q, 0, 0.1);
    t[`${p}self_attn.k_proj.bias`] = vector(D, 0, 0.1);
    t[`${p}self_attn.v_proj.bias`] = vector(D, 0, 0.1);
    t[`${p}self_attn.o_proj.weight`] = matrix(s.hidden, Q);
    t[`${p}mlp.gate_proj.weight`] = matrix(s.intermediate, s.hidden);
    t[`${p}mlp.up_proj.weight`] = matrix(s.intermediate, s.hidden);
    t[`${p}mlp.down_proj.weight`] = matrix(s.hidden, s.intermediate);
  }
  t['model.norm.weight'] = vector(s.hidden, 1, 0.1);
  writeSafetensors(path.join(dir, 'model.safetensors'), t);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: s.hidden, num_hidden_layers: s.layers,
    num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, intermediate_size: s.intermediate, vocab_size: s.vocab,
    max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, hidden_act: 'silu', torch_dtype: 'bfloat16',
  }, null, 2));
}

/** A cskv file with random orthonormal bases of rank round(density × D) for keys and values of every layer. */
export function writeRandomCskv(file: string, s: ModelShape, density: number, bits: number, window: number, seed = 2): void {
  const D = s.kvHeads * s.headDim;
  const rank = Math.max(1, Math.round(density * D));
  const g = new Gaussian(seed);
  const t: Record<string, TensorToWrite> = {};
  for (let i = 0; i < s.layers; i++) {
    for (const kind of ['k', 'v']) {
      t[`layers.${i}.${kind}.basis`] = { dtype: 'F32', shape: [D, rank], data: float32Bytes(orthonormalColumns(g.fill(D * rank, 1), D, rank)) };
      t[`layers.${i}.${kind}.mean`] = { dtype: 'F32', shape: [D], data: float32Bytes(new Float32Array(D)) };
    }
  }
  writeSafetensors(file, t, { format: 'cskv', version: '1', window: String(window), bits: String(bits), density: String(density), source: 'random (benchmark)' });
}

/** Gram-Schmidt on the columns of a row-major [rows, cols] matrix. */
function orthonormalColumns(m: Float32Array, rows: number, cols: number): Float32Array {
  const a = Float64Array.from(m);
  for (let j = 0; j < cols; j++) {
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let r = 0; r < rows; r++) dot += a[r * cols + j]! * a[r * cols + k]!;
      for (let r = 0; r < rows; r++) a[r * cols + j]! -= dot * a[r * cols + k]!;
    }
    let norm = 0;
    for (let r = 0; r < rows; r++) norm += a[r * cols + j]! ** 2;
    norm = Math.sqrt(norm);
    for (let r = 0; r < rows; r++) a[r * cols + j]! /= norm;
  }
  return Float32Array.from(a);
}
