// The settings the extension, the sidecar and the command line share: each default and each check, written once.
// package.json's "contributes.configuration" repeats the editor's defaults (VS Code reads them there); a test checks
// that they agree with these.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEFAULTS = {
  /** W: tokens kept at full precision before they move to the compressed branch (the paper's 32; docs/cskv.md). */
  window: 32,
  /** Width of the compressed branch when neither the factor file nor a setting names one. */
  bits: 16,
  /** Fraction of key/value channels `compress` keeps. */
  density: 0.2,
  /** Most tokens of workspace files kept resident (cskv.context.tokenBudget). */
  contextTokenBudget: 32768,
  backend: 'auto',
  /** cskv.compression.factors: `cskv.safetensors` beside the model when present. */
  cskv: 'auto',
  /** Milliseconds without typing before a completion is requested. */
  completionDebounceMs: 250,
  /** Most tokens of one chat answer (cskv.chat.maxAnswerTokens); the model's context caps it further. */
  answerTokens: 1024,
} as const;

export type Backend = 'auto' | 'cuda' | 'webgpu' | 'onnx';
export const BACKENDS: readonly Backend[] = ['auto', 'cuda', 'webgpu', 'onnx'];

/** The files a model folder must hold, in the words the messages use. */
const MODEL_FOLDER_LAYOUT = 'config.json, *.safetensors, tokenizer.json';

/**
 * A sentence for the user when `dir` cannot be a model (missing, or a folder without config.json and
 * tokenizer.json); undefined when it may be one. A file is taken as a GGUF model: its own reader says what is
 * wrong with it. `setting` names where the path came from.
 */
export function checkModelFolder(dir: string, setting = 'cskv.modelPath'): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    return `The model "${dir}" does not exist. Set ${setting} to a Hugging Face model folder (${MODEL_FOLDER_LAYOUT}) or a .gguf file.`;
  }
  if (stat.isFile()) return undefined;
  if (!stat.isDirectory()) return `${setting} "${dir}" is neither a model folder nor a .gguf file.`;
  const missing = ['config.json', 'tokenizer.json'].filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length > 0) return `"${dir}" is not a model folder: ${missing.join(' and ')} not found.`;
  return undefined;
}
