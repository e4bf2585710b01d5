// A Qwen2 checkpoint in the Hugging Face layout written again as GGUF v3 (F16 or Q8_0 linear weights, F32 norms
// and biases), with a byte-level token list of the model's vocabulary size, so that llama.cpp can run the very
// same model as the runtime (the CPU benchmark's peer, and the writer's test). Token ids are fed directly; the
// token strings only have to exist.
import { readModelConfig } from '../../src/runtime/model/config';
import { type GgufTensor, type MetadataValue, writeGguf } from '../../src/runtime/model/ggufWriter';
import { ModelWeights } from '../../src/runtime/model/weights';

export type GgufWeights = 'F16' | 'Q8_0';

/** GPT-2's byte-to-symbol table: the 256 single-byte tokens a byte-level BPE vocabulary starts from. */
function byteSymbols(): string[] {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

export function writeGgufModel(modelDir: string, file: string, weights: GgufWeights): void {
  const c = readModelConfig(modelDir);
  if (c.architecture !== 'Qwen2ForCausalLM') throw new Error(`writeGgufModel writes Qwen2 models only, got ${c.architecture}`);
  if (c.rope.type !== 'default') throw new Error(`writeGgufModel writes default RoPE only, got ${c.rope.type}`);
  const w = ModelWeights.open(modelDir);
  try {
    const symbols = byteSymbols();
    const tokens = Array.from({ length: c.vocabSize }, (_, i) => (i < 256 ? symbols[i]! : `<t${i}>`));
    const meta: Record<string, MetadataValue> = {
      'general.architecture': { type: 'string', value: 'qwen2' },
      'general.name': { type: 'string', value: 'cskv-code random benchmark model' },
      'general.file_type': { type: 'u32', value: weights === 'F16' ? 1 : 7 },
      'general.alignment': { type: 'u32', value: 32 },
      'qwen2.context_length': { type: 'u32', value: c.maxPositions },
      'qwen2.embedding_length': { type: 'u32', value: c.hiddenSize },
      'qwen2.block_count': { type: 'u32', value: c.layers },
      'qwen2.feed_forward_length': { type: 'u32', value: c.intermediateSize },
      'qwen2.attention.head_count': { type: 'u32', value: c.heads },
      'qwen2.attention.head_count_kv': { type: 'u32', value: c.kvHeads },
      'qwen2.attention.key_length': { type: 'u32', value: c.headDim },
      'qwen2.attention.value_length': { type: 'u32', value: c.headDim },
      'qwen2.rope.freq_base': { type: 'f32', value: c.rope.theta },
      'qwen2.attention.layer_norm_rms_epsilon': { type: 'f32', value: c.rmsNormEps },
      'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
      'tokenizer.ggml.pre': { type: 'string', value: 'qwen2' },
      'tokenizer.ggml.tokens': { type: 'string[]', value: tokens },
      'tokenizer.ggml.token_type': { type: 'i32[]', value: new Int32Array(c.vocabSize).fill(1) },
      'tokenizer.ggml.merges': { type: 'string[]', value: [] },
    };
    const H = c.hiddenSize, D = c.kvDim, Q = c.heads * c.headDim, I = c.intermediateSize;
    const tensors: GgufTensor[] = [];
    const add = (name: string, source: string, shape: number[], type: 'F32' | GgufWeights): void => {
      tensors.push({ name, shape, type, values: () => w.readFloat32(source, shape) });
    };
    add('token_embd.weight', 'model.embed_tokens.weight', [c.vocabSize, H], weights);
    add('output_norm.weight', 'model.norm.weight', [H], 'F32');
    if (!c.tieEmbeddings) add('output.weight', 'lm_head.weight', [c.vocabSize, H], weights);
    for (let i = 0; i < c.layers; i++) {
      const p = `model.layers.${i}.`, b = `blk.${i}.`;
      add(`${b}attn_norm.weight`, `${p}input_layernorm.weight`, [H], 'F32');
      add(`${b}attn_q.weight`, `${p}self_attn.q_proj.weight`, [Q, H], weights);
      add(`${b}attn_q.bias`, `${p}self_attn.q_proj.bias`, [Q], 'F32');
      add(`${b}attn_k.weight`, `${p}self_attn.k_proj.weight`, [D, H], weights);
      add(`${b}attn_k.bias`, `${p}self_attn.k_proj.bias`, [D], 'F32');
      add(`${b}attn_v.weight`, `${p}self_attn.v_proj.weight`, [D, H], weights);
      add(`${b}attn_v.bias`, `${p}self_attn.v_proj.bias`, [D], 'F32');
      add(`${b}attn_output.weight`, `${p}self_attn.o_proj.weight`, [H, Q], weights);
      add(`${b}ffn_norm.weight`, `${p}post_attention_layernorm.weight`, [H], 'F32');
      add(`${b}ffn_gate.weight`, `${p}mlp.gate_proj.weight`, [I, H], weights);
      add(`${b}ffn_up.weight`, `${p}mlp.up_proj.weight`, [I, H], weights);
      add(`${b}ffn_down.weight`, `${p}mlp.down_proj.weight`, [H, I], weights);
    }
    writeGguf(file, meta, tensors);
  } finally {
    w.close();
  }
}
