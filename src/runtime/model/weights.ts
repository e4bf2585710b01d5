// The tensors of a model under their Hugging Face names: from a model directory (one model.safetensors or shards
// listed in model.safetensors.index.json) or from a GGUF file (ggufWeights.ts). Each file's header is read once;
// data is read per tensor on demand.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFormatError, UnsupportedError } from '../errors';
import type { ModelConfig } from './config';
import type { BlockQuantised } from '../onnx/blockQuantizer';
import { type DType, SafetensorsFile, type TensorInfo, toFloat32 } from '../safetensors';
import { firstNonFinite, firstNonFiniteBytes, requireFinite } from './finiteValues';
import { GgufWeights } from './ggufWeights';
import { isGgufModel } from './modelPath';

export interface ModelWeights {
  /** The file to name when a tensor is missing. */
  readonly describedBy: string;
  has(name: string): boolean;
  /** dtype and shape of what readBytes gives. */
  info(name: string): TensorInfo;
  /** A weight as float32, checking its shape. */
  readFloat32(name: string, shape: readonly number[]): Float32Array;
  /** A float weight's raw bytes in F32, F16 or BF16. */
  readBytes(name: string): Uint8Array;
  /** Rows [first, first + count) of a 2-D weight as float32, read from the file when asked (embedding lookups). */
  readRows(name: string, first: number, count: number): Float32Array;
  /**
   * A linear weight [out, in] as 8-bit blocks of 32 in MatMulNBits' layout when the file stores it so (GGUF Q8_0),
   * exactly the file's values; undefined when it does not (the caller quantises from readFloat32).
   */
  readQ8Blocks(name: string, shape: readonly [number, number]): BlockQuantised | undefined;
  /**
   * A linear weight [out, in] as the file stores it when that is a ggml block type (GGUF Q4_0, Q4_K, ...: rows of
   * whole blocks), with llama.cpp's q/k row permutation undone; undefined for float storage (the caller quantises).
   */
  readStoredBlocks(name: string, shape: readonly [number, number]): StoredBlocks | undefined;
  close(): void;
}

/** A weight's bytes in a ggml block type, as stored (readStoredBlocks). */
export interface StoredBlocks {
  /** The ggml type name: Q4_0, Q4_K, Q6_K, ... */
  type: string;
  bytes: Uint8Array;
}

export const ModelWeights = {
  /**
   * The weights of a model directory or a GGUF file. With the model's `config`, a checkpoint holding more layers
   * than the config names is refused (its extra layers would be dropped without a word).
   */
  open(modelPath: string, config?: ModelConfig): ModelWeights {
    const weights = finiteOnly(isGgufModel(modelPath) ? GgufWeights.open(modelPath) : SafetensorsWeights.open(modelPath));
    if (config && weights.has(`model.layers.${config.layers}.input_layernorm.weight`)) {
      let held = config.layers + 1;
      while (weights.has(`model.layers.${held}.input_layernorm.weight`)) held++;
      weights.close();
      throw new ModelFormatError(config.file, `num_hidden_layers is ${config.layers} but ${weights.describedBy} holds ${held} layers; the config belongs to another model`);
    }
    return weights;
  },
};

/** `weights` whose reads refuse a tensor holding NaN or infinity, naming it (finiteValues.ts). */
function finiteOnly(weights: ModelWeights): ModelWeights {
  return {
    describedBy: weights.describedBy,
    has: (name) => weights.has(name),
    info: (name) => weights.info(name),
    readFloat32: (name, shape) => {
      const values = weights.readFloat32(name, shape);
      requireFinite(firstNonFinite(values), weights.describedBy, name);
      return values;
    },
    readBytes: (name) => {
      const bytes = weights.readBytes(name);
      requireFinite(firstNonFiniteBytes(bytes, weights.info(name).dtype), weights.describedBy, name);
      return bytes;
    },
    readRows: (name, first, count) => {
      const rows = weights.readRows(name, first, count);
      requireFinite(firstNonFinite(rows), weights.describedBy, name);
      return rows;
    },
    // The block types' scales are checked where they are converted (cudaQ4Weights.ts refuses non-finite ones).
    readStoredBlocks: (name, shape) => weights.readStoredBlocks(name, shape),
    readQ8Blocks: (name, shape) => {
      const blocks = weights.readQ8Blocks(name, shape);
      // The codes are integers; a block's scale is the only place a NaN or infinity can hide.
      if (blocks) requireFinite(firstNonFinite(blocks.scales), weights.describedBy, name);
      return blocks;
    },
    close: () => weights.close(),
  };
}

class SafetensorsWeights implements ModelWeights {
  private constructor(
    private readonly files: Map<string, SafetensorsFile>,
    private readonly where: Map<string, SafetensorsFile>,
    /** The file to name when a tensor is missing: the index, or the single weights file. */
    readonly describedBy: string,
  ) {}

  static open(modelDir: string): SafetensorsWeights {
    const indexPath = path.join(modelDir, 'model.safetensors.index.json');
    const singlePath = path.join(modelDir, 'model.safetensors');
    if (fs.existsSync(indexPath)) return SafetensorsWeights.openSharded(modelDir, indexPath);
    if (!fs.existsSync(singlePath)) {
      throw new ModelFormatError(modelDir, 'no model.safetensors or model.safetensors.index.json in the model directory');
    }
    const file = SafetensorsFile.open(singlePath);
    return new SafetensorsWeights(new Map([[singlePath, file]]), new Map([...file.tensors.keys()].map((n) => [n, file])), singlePath);
  }

  private static openSharded(modelDir: string, indexPath: string): SafetensorsWeights {
    let index: { weight_map?: unknown } | null;
    try {
      index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    } catch (err) {
      throw new ModelFormatError(indexPath, `malformed index: ${(err as Error).message}`);
    }
    const map = index?.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new ModelFormatError(indexPath, '"weight_map" must be an object of tensor name to file');
    const files = new Map<string, SafetensorsFile>();
    const where = new Map<string, SafetensorsFile>();
    try {
      for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
        if (typeof shard !== 'string' || shard === '' || shard === '.' || shard === '..' || shard.includes('/') || shard.includes('\\')) {
          throw new ModelFormatError(indexPath, `weight_map["${tensor}"] must be a file name in the model directory, got ${JSON.stringify(shard)}`);
        }
        const shardPath = path.join(modelDir, shard);
        let file = files.get(shardPath);
        if (!file) {
          if (!fs.existsSync(shardPath)) throw new ModelFormatError(shardPath, `does not exist; ${path.basename(indexPath)} places tensor "${tensor}" in it`);
          file = SafetensorsFile.open(shardPath);
          files.set(shardPath, file);
        }
        if (!file.tensors.has(tensor)) throw new ModelFormatError(shardPath, `missing tensor "${tensor}" that ${path.basename(indexPath)} places in this file`);
        where.set(tensor, file);
      }
    } catch (err) {
      for (const f of files.values()) f.close();
      throw err;
    }
    return new SafetensorsWeights(files, where, indexPath);
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): TensorInfo {
    const file = this.where.get(name);
    if (!file) throw new ModelFormatError(this.describedBy, `missing tensor "${name}"`);
    return file.tensors.get(name)!;
  }

  readFloat32(name: string, shape: readonly number[]): Float32Array {
    this.info(name);
    return this.where.get(name)!.readFloat32(name, shape);
  }

  /** A float weight's raw bytes, in the checkpoint's dtype. */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    const file = this.where.get(name)!;
    floatDtype(file.path, info);
    return file.readBytes(info);
  }

  readRows(name: string, first: number, count: number): Float32Array {
    const info = this.info(name);
    const rows = checkRows(this.describedBy, info, first, count);
    const rowBytes = info.byteLength / rows;
    return toFloat32(this.where.get(name)!.readBytes(info, first * rowBytes, count * rowBytes), floatDtype(this.where.get(name)!.path, info));
  }

  readStoredBlocks(): undefined {
    return undefined;
  }

  readQ8Blocks(): undefined {
    return undefined; // safetensors checkpoints hold float weights
  }

  close(): void {
    for (const f of this.files.values()) f.close();
  }
}

function floatDtype(file: string, info: TensorInfo): DType {
  if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
    throw new UnsupportedError(file, `tensor "${info.name}" has dtype ${info.dtype}; only F32, F16 and BF16 weights are supported`);
  }
  return info.dtype;
}

/** The row count of a 2-D tensor, after checking that rows [first, first + count) exist. */
export function checkRows(file: string, info: { name: string; shape: readonly number[] }, first: number, count: number): number {
  if (info.shape.length !== 2) throw new ModelFormatError(file, `tensor "${info.name}" has shape [${info.shape.join(', ')}]; rows are read from 2-D tensors`);
  const rows = info.shape[0]!;
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > rows) {
    throw new RangeError(`tensor "${info.name}": rows [${first}, ${first + count}) outside its ${rows}`);
  }
  return rows;
}
