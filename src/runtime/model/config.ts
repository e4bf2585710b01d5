// config.json of a Llama-family checkpoint, normalised: both the transformers 4.x spelling (rope_theta +
// rope_scaling) and the 5.x spelling (rope_parameters) read into one RopeSettings.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFormatError, UnsupportedError } from '../errors';
import { ggufModelConfig } from './ggufConfig';
import { GgufFile } from './ggufFile';
import { isGgufModel } from './modelPath';

export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export type RopeType = 'default' | 'linear' | 'dynamic' | 'yarn' | 'llama3';

export interface RopeSettings {
  readonly type: RopeType;
  readonly theta: number;
  readonly factor: number;
  /** Raw parameters for the scaled types (yarn's beta_fast, llama3's low_freq_factor, ...). */
  readonly params: Readonly<Record<string, number | boolean | undefined>>;
}

export interface ModelConfig {
  readonly file: string;
  readonly architecture: Architecture;
  readonly hiddenSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly rmsNormEps: number;
  readonly maxPositions: number;
  readonly tieEmbeddings: boolean;
  /** q/k/v projections carry a bias (always for Qwen2; attention_bias for Llama). */
  readonly qkvBias: boolean;
  readonly outputBias: boolean;
  readonly mlpBias: boolean;
  /** Keys at distance >= slidingWindow from the query are masked (Mistral v0.1); undefined = full attention. */
  readonly slidingWindow: number | undefined;
  readonly rope: RopeSettings;
  readonly bosTokenId: number | undefined;
  readonly eosTokenIds: readonly number[];
  /** Key/value channels per layer: kvHeads × headDim. */
  readonly kvDim: number;
}

/** The config of a model directory (config.json) or of a GGUF file (its metadata). */
export function readModelConfig(modelDir: string): ModelConfig {
  if (isGgufModel(modelDir)) {
    const gguf = GgufFile.open(modelDir, { arrays: false });
    try {
      return ggufModelConfig(gguf);
    } finally {
      gguf.close();
    }
  }
  const file = path.join(modelDir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ModelFormatError(file, `cannot read the model's config (${(err as NodeJS.ErrnoException).code ?? err}); is ${modelDir} a Hugging Face model directory?`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(file, `malformed JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ModelFormatError(file, 'expected a JSON object');
  return parseModelConfig(raw as Record<string, unknown>, file);
}

export function parseModelConfig(raw: Record<string, unknown>, file: string): ModelConfig {
  const fail = (what: string): never => {
    throw new ModelFormatError(file, what);
  };
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`"${key}" must be a positive integer, got ${JSON.stringify(raw[key])}`);
    return v as number;
  };
  const num = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`"${key}" must be a number, got ${JSON.stringify(raw[key])}`);
    return v as number;
  };

  const architectures = raw.architectures;
  if (architectures === undefined || architectures === null) fail('"architectures" is missing; cannot tell which model this is');
  if (!Array.isArray(architectures)) {
    fail(`"architectures" must be a list of class names, e.g. ["LlamaForCausalLM"], got ${JSON.stringify(architectures)}`);
  }
  const architecture = (architectures as unknown[])[0];
  if (typeof architecture !== 'string') fail(`"architectures" must list the model's class name first, got ${JSON.stringify(architectures)}`);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(architecture as string)) {
    throw new UnsupportedError(file, `architecture ${architecture} is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  }
  const arch = architecture as Architecture;
  const hiddenSize = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) fail(`num_attention_heads (${heads}) is not a multiple of num_key_value_heads (${kvHeads})`);
  const headDim = raw.head_dim == null ? hiddenSize / heads : int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) fail(`head dimension ${headDim} must be an even integer`);
  if (raw.partial_rotary_factor != null && raw.partial_rotary_factor !== 1) {
    throw new UnsupportedError(file, `partial_rotary_factor ${raw.partial_rotary_factor} is not supported`);
  }
  if (raw.hidden_act != null && raw.hidden_act !== 'silu') {
    throw new UnsupportedError(file, `hidden_act "${raw.hidden_act}" is not supported (only silu)`);
  }
  const maxPositions = int('max_position_embeddings', 4096);

  let slidingWindow: number | undefined;
  if (arch === 'MistralForCausalLM' && raw.sliding_window != null) slidingWindow = int('sliding_window');
  if (arch === 'Qwen2ForCausalLM' && raw.use_sliding_window === true) {
    throw new UnsupportedError(file, 'Qwen2 with use_sliding_window: true is not supported');
  }

  const attentionBias = raw.attention_bias === true;
  const idList = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x) => Number.isInteger(x)) : Number.isInteger(v) ? [v as number] : []);

  return {
    file,
    architecture: arch,
    hiddenSize,
    layers: int('num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    intermediateSize: int('intermediate_size'),
    vocabSize: int('vocab_size'),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    maxPositions,
    tieEmbeddings: raw.tie_word_embeddings === true,
    qkvBias: arch === 'Qwen2ForCausalLM' || attentionBias,
    outputBias: arch !== 'Qwen2ForCausalLM' && attentionBias,
    mlpBias: raw.mlp_bias === true,
    slidingWindow,
    rope: parseRope(raw, file),
    bosTokenId: Number.isInteger(raw.bos_token_id) ? (raw.bos_token_id as number) : undefined,
    eosTokenIds: idList(raw.eos_token_id),
    kvDim: kvHeads * headDim,
  };
}

const ROPE_TYPES: readonly RopeType[] = ['default', 'linear', 'dynamic', 'yarn', 'llama3'];

function parseRope(raw: Record<string, unknown>, file: string): RopeSettings {
  // 5.x: rope_parameters {rope_type, rope_theta, ...}; 4.x: rope_theta + rope_scaling {type|rope_type, factor, ...}.
  const source = (raw.rope_parameters ?? raw.rope_scaling ?? {}) as Record<string, unknown>;
  if (typeof source !== 'object' || source === null || Array.isArray(source)) {
    throw new ModelFormatError(file, `"${raw.rope_parameters ? 'rope_parameters' : 'rope_scaling'}" must be an object`);
  }
  const theta = (source.rope_theta ?? raw.rope_theta ?? 10000) as unknown;
  if (typeof theta !== 'number' || !(theta > 0)) throw new ModelFormatError(file, `rope_theta must be a positive number, got ${JSON.stringify(theta)}`);
  const type = (source.rope_type ?? source.type ?? 'default') as string;
  if (!(ROPE_TYPES as readonly string[]).includes(type)) {
    throw new UnsupportedError(file, `RoPE type "${type}" is not supported (supported: ${ROPE_TYPES.join(', ')})`);
  }
  const params: Record<string, number | boolean | undefined> = {};
  for (const [k, v] of Object.entries(source)) {
    if (typeof v === 'number' || typeof v === 'boolean') params[k] = v;
  }
  let factor = 1;
  if (type !== 'default') {
    const f = source.factor;
    if (typeof f !== 'number' || !(f > 0)) throw new ModelFormatError(file, `RoPE type "${type}" needs a positive "factor", got ${JSON.stringify(f)}`);
    factor = f;
  }
  return { type: type as RopeType, theta, factor, params };
}
