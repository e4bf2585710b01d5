// A GGUF file's metadata read as the runtime's ModelConfig: llama.cpp writes the Hugging Face config under
// "{arch}.*" keys (block_count, embedding_length, attention.head_count, rope.freq_base, ...). The llama and qwen2
// architectures load; Mistral's GGUF files use the llama architecture.
import { ModelFormatError, UnsupportedError } from '../errors';
import type { Architecture, ModelConfig, RopeSettings } from './config';
import type { GgufFile } from './ggufFile';
import { ropeFrequencies } from './rope';

export const GGUF_ARCHITECTURES: Readonly<Record<string, Architecture>> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM' };

export function ggufModelConfig(gguf: GgufFile): ModelConfig {
  const file = gguf.path;
  const fail = (what: string): never => {
    throw new ModelFormatError(file, what);
  };
  const arch = gguf.string('general.architecture');
  if (arch === undefined) fail('metadata "general.architecture" is missing; cannot tell which model this is');
  const architecture = GGUF_ARCHITECTURES[arch!];
  if (!architecture) {
    throw new UnsupportedError(file, `architecture "${arch}" is not supported (supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')})`);
  }
  const key = (k: string): string => `${arch}.${k}`;
  const int = (k: string, fallback?: number): number => {
    const v = gguf.number(key(k)) ?? fallback;
    if (v === undefined || !Number.isInteger(v) || v <= 0) fail(`metadata "${key(k)}" must be a positive integer, got ${JSON.stringify(gguf.metadata.get(key(k)) ?? null)}`);
    return v!;
  };
  const hiddenSize = int('embedding_length');
  const heads = int('attention.head_count');
  const kvHeads = int('attention.head_count_kv', heads);
  if (heads % kvHeads !== 0) fail(`${key('attention.head_count')} (${heads}) is not a multiple of ${key('attention.head_count_kv')} (${kvHeads})`);
  const headDim = int('attention.key_length', hiddenSize / heads);
  if (headDim % 2 !== 0) fail(`head dimension ${headDim} must be even`);
  const valueLength = gguf.number(key('attention.value_length'));
  if (valueLength !== undefined && valueLength !== headDim) throw new UnsupportedError(file, `${key('attention.value_length')} ${valueLength} differs from the key length ${headDim}`);
  const ropeDims = gguf.number(key('rope.dimension_count'));
  if (ropeDims !== undefined && ropeDims !== headDim) throw new UnsupportedError(file, `partial rotary embedding (${key('rope.dimension_count')} ${ropeDims} of head dimension ${headDim}) is not supported`);

  const embedding = gguf.tensors.get('token_embd.weight');
  if (!embedding) fail('tensor "token_embd.weight" is missing');
  const vocabSize = embedding!.shape[0]!;
  const declaredVocab = gguf.number(key('vocab_size'));
  if (declaredVocab !== undefined && declaredVocab !== vocabSize) fail(`${key('vocab_size')} ${declaredVocab} does not match tensor "token_embd.weight" with ${vocabSize} rows`);

  const eps = gguf.number(key('attention.layer_norm_rms_epsilon'));
  if (eps === undefined || !(eps > 0)) fail(`metadata "${key('attention.layer_norm_rms_epsilon')}" must be a positive number`);
  const maxPositions = int('context_length', 4096);
  const id = (k: string): number | undefined => {
    const v = gguf.number(k);
    return v !== undefined && Number.isInteger(v) && v >= 0 ? v : undefined;
  };
  const eosTokenIds = [...new Set(['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id'].map(id).filter((v) => v !== undefined))];
  const has = (name: string): boolean => gguf.tensors.has(name);

  const base = {
    file, architecture, hiddenSize, heads, kvHeads, headDim, vocabSize, maxPositions,
    layers: int('block_count'),
    intermediateSize: int('feed_forward_length'),
    rmsNormEps: eps!,
    tieEmbeddings: !has('output.weight'),
    qkvBias: architecture === 'Qwen2ForCausalLM' || has('blk.0.attn_q.bias'),
    outputBias: has('blk.0.attn_output.bias'),
    mlpBias: has('blk.0.ffn_gate.bias'),
    // Mistral v0.1's sliding window, where the file records it (llama.cpp's key for it).
    slidingWindow: gguf.number(key('attention.sliding_window')),
    bosTokenId: id('tokenizer.ggml.bos_token_id'),
    eosTokenIds,
    kvDim: kvHeads * headDim,
  };
  const config: ModelConfig = { ...base, rope: ggufRope(gguf, arch!, maxPositions) };
  return gguf.tensors.has('rope_freqs.weight') ? withLlama3Rope(gguf, config) : config;
}

function ggufRope(gguf: GgufFile, arch: string, maxPositions: number): RopeSettings {
  const file = gguf.path;
  const theta = gguf.number(`${arch}.rope.freq_base`) ?? 10000;
  if (!(theta > 0)) throw new ModelFormatError(file, `metadata "${arch}.rope.freq_base" must be positive, got ${theta}`);
  // Older files write only rope.scale_linear; newer ones rope.scaling.{type,factor,original_context_length,...}.
  const legacyLinear = gguf.number(`${arch}.rope.scale_linear`);
  const type = gguf.string(`${arch}.rope.scaling.type`) ?? (legacyLinear !== undefined && legacyLinear !== 1 ? 'linear' : 'none');
  const factor = gguf.number(`${arch}.rope.scaling.factor`) ?? legacyLinear ?? 1;
  if (type === 'none' || factor === 1 && type !== 'yarn') return { type: 'default', theta, factor: 1, params: {} };
  if (!(factor > 0)) throw new ModelFormatError(file, `metadata "${arch}.rope.scaling.factor" must be positive, got ${factor}`);
  if (type === 'linear') return { type: 'linear', theta, factor, params: { factor } };
  if (type === 'yarn') {
    const original = gguf.number(`${arch}.rope.scaling.original_context_length`);
    const params: Record<string, number> = { factor };
    // transformers derives the factor from max_position_embeddings / original; llama.cpp keeps the written factor.
    // Where the two disagree the written factor wins, so the original length is only passed when they agree.
    if (original !== undefined && Math.abs(maxPositions / original - factor) < 1e-6) params.original_max_position_embeddings = original;
    const betaFast = gguf.number(`${arch}.rope.scaling.yarn_beta_fast`);
    const betaSlow = gguf.number(`${arch}.rope.scaling.yarn_beta_slow`);
    if (betaFast !== undefined) params.beta_fast = betaFast;
    if (betaSlow !== undefined) params.beta_slow = betaSlow;
    return { type: 'yarn', theta, factor, params };
  }
  throw new UnsupportedError(file, `RoPE scaling type "${type}" is not supported (supported: none, linear, yarn, and Llama 3's rope_freqs)`);
}

/**
 * Llama 3.1+ files carry RoPE scaling as a tensor of per-frequency divisors (rope_freqs.weight), not as metadata.
 * Llama 3's rule divides low frequencies by `factor`, keeps high ones, and blends linearly in between; the blend
 * depends only on two numbers, which two blended entries determine. The settings are fitted from the tensor (or,
 * with fewer than two blended entries, taken from the published ones) and kept only if they reproduce every entry.
 */
function withLlama3Rope(gguf: GgufFile, config: ModelConfig): ModelConfig {
  const half = config.headDim / 2;
  const tensor = gguf.tensors.get('rope_freqs.weight')!;
  if (tensor.type.name !== 'F32' || tensor.shape.length !== 1 || tensor.shape[0] !== half) {
    throw new ModelFormatError(gguf.path, `tensor "rope_freqs.weight" must be F32 [${half}], got ${tensor.type.name} [${tensor.shape.join(', ')}]`);
  }
  const bytes = gguf.readBytes(tensor);
  const divisors = Float32Array.from({ length: half }, (_, i) => Buffer.from(bytes.buffer, bytes.byteOffset).readFloatLE(4 * i));
  const plain = ropeFrequencies(config, 0).invFreq;
  const factor = Math.max(...divisors);
  if (Math.abs(factor - 1) < 1e-6) return config;
  const candidates: Array<{ low: number; high: number; original: number }> = [];
  const blended = [...divisors.keys()].filter((i) => divisors[i]! > 1 + 1e-6 && divisors[i]! < factor * (1 - 1e-6));
  if (blended.length >= 2) {
    // smooth = (1/d - 1/factor) / (1 - 1/factor) = original * f / 2π / (high - low) - low / (high - low) = a x - b
    const point = (i: number): [number, number] => [plain[i]! / (2 * Math.PI), (1 / divisors[i]! - 1 / factor) / (1 - 1 / factor)];
    const [x1, s1] = point(blended[0]!);
    const [x2, s2] = point(blended[blended.length - 1]!);
    const a = (s2 - s1) / (x2 - x1);
    const b = a * x1 - s1;
    if (a > 0 && b > 0) candidates.push({ low: 1, high: 1 + 1 / b, original: a / b });
  }
  for (const original of [8192, 4096, 131072]) candidates.push({ low: 1, high: 4, original });
  for (const c of candidates) {
    const rope: RopeSettings = {
      type: 'llama3', theta: config.rope.theta, factor,
      params: { factor, low_freq_factor: c.low, high_freq_factor: c.high, original_max_position_embeddings: c.original },
    };
    const scaled = ropeFrequencies({ ...config, rope }, 0).invFreq;
    if (scaled.every((f, i) => Math.abs(plain[i]! / f - divisors[i]!) <= 1e-4 * divisors[i]!)) return { ...config, rope };
  }
  throw new UnsupportedError(gguf.path, 'tensor "rope_freqs.weight" does not follow Llama 3 RoPE scaling');
}
