// What a model path names: a Hugging Face model directory (config.json, *.safetensors, tokenizer.json) or a single
// GGUF file. Every entry point that takes a model (config, weights, tokenizer, the CLI's --model, the sidecar's
// modelPath) asks here, and the CSKV factor file that belongs to a model is named here too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GgufFile } from './ggufFile';

/** True when `modelPath` is a file (a GGUF model); a directory, or a path that does not exist, is not. */
export function isGgufModel(modelPath: string): boolean {
  return fs.statSync(modelPath, { throwIfNoEntry: false })?.isFile() ?? false;
}

/**
 * The CSKV factor file that belongs to a model: DIR/cskv.safetensors for a model directory, and for a GGUF file
 * NAME.cskv.safetensors beside it (a folder often holds several quantisations of one model, each its own factors).
 */
export function defaultCskvFile(modelPath: string): string {
  if (!isGgufModel(modelPath)) return path.join(modelPath, 'cskv.safetensors');
  const dir = path.dirname(modelPath);
  const base = path.basename(modelPath).replace(/\.gguf$/i, '');
  return path.join(dir, `${base}.cskv.safetensors`);
}

/** Whether the model carries a tokenizer: tokenizer.json in a directory, tokenizer metadata in a GGUF file. */
export function modelHasTokenizer(modelPath: string): boolean {
  if (!isGgufModel(modelPath)) return fs.existsSync(path.join(modelPath, 'tokenizer.json'));
  const gguf = GgufFile.open(modelPath, { arrays: false });
  try {
    return gguf.metadata.has('tokenizer.ggml.model');
  } finally {
    gguf.close();
  }
}
