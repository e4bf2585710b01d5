// Finds the models a user already has: Hugging Face hub cache snapshots (models--org--name/snapshots/<rev>/, the
// revision from refs/main), GGUF files of LM Studio, llama.cpp's download cache and Ollama's blob store, and
// folders the user names. Every candidate is described from its headers only (no weights are read) and says
// whether this runtime can load it and, if not, why. A broken candidate becomes a row with its reason, never an
// exception: one bad download must not hide the others.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SafetensorsFile } from '../safetensors';
import { canDequantise } from './ggmlDequant';
import { GGUF_FILE_TYPES } from './ggmlTypes';
import { parseModelConfig } from './config';
import { GGUF_ARCHITECTURES } from './ggufConfig';
import { GgufFile, splitPartOf } from './ggufFile';
import { huggingFaceName } from './ggufWeights';
import { defaultCskvFile } from './modelPath';
import type { FoundModel, ModelSource } from '../../shared/foundModel';

export type { FoundModel, ModelSource };

export interface DiscoveryOptions {
  /** Environment to read HF_HOME, HF_HUB_CACHE, LLAMA_CACHE, OLLAMA_MODELS from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Home directory (default os.homedir()). */
  home?: string;
  /** Extra folders to search for model folders and GGUF files. */
  folders?: readonly string[];
}

/** The Hugging Face hub cache folder, as huggingface_hub resolves it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return path.join(env.HF_HOME, 'hub');
  return path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'huggingface', 'hub');
}

export function discoverModels(options: DiscoveryOptions = {}): FoundModel[] {
  const env = options.env ?? process.env;
  const home = options.home ?? os.homedir();
  const cache = env.XDG_CACHE_HOME || path.join(home, '.cache');
  const found: FoundModel[] = [];
  found.push(...hubModels(hubCacheDir(env, home)));
  for (const dir of [path.join(home, '.lmstudio', 'models'), path.join(cache, 'lm-studio', 'models')]) found.push(...ggufFilesUnder(dir, 'lmstudio'));
  found.push(...ggufFilesUnder(env.LLAMA_CACHE || path.join(cache, 'llama.cpp'), 'llama.cpp'));
  found.push(...ollamaModels(env.OLLAMA_MODELS || path.join(home, '.ollama', 'models')));
  for (const folder of options.folders ?? []) found.push(...folderModels(path.resolve(folder)));
  // The same file reached twice (a folder the user names inside LM Studio's) is listed once.
  const seen = new Set<string>();
  return found.filter((m) => !seen.has(m.path) && seen.add(m.path));
}

// ---- the Hugging Face hub cache ----

function hubModels(hub: string): FoundModel[] {
  const out: FoundModel[] = [];
  for (const repo of listDir(hub)) {
    if (!repo.startsWith('models--')) continue;
    const name = repo.slice('models--'.length).split('--').join('/');
    const repoDir = path.join(hub, repo);
    for (const snapshot of snapshotsOf(repoDir)) {
      const ggufs = listDir(snapshot).filter(isModelGguf);
      if (fs.existsSync(path.join(snapshot, 'config.json')) || ggufs.length === 0) out.push(describeFolder(snapshot, name, 'huggingface'));
      for (const f of ggufs) out.push(describeGguf(path.join(snapshot, f), `${name}/${f}`, 'huggingface'));
    }
  }
  return out;
}

/** The snapshot refs/main names, else every snapshot (a repo fetched at a pinned revision has no refs/main). */
function snapshotsOf(repoDir: string): string[] {
  const snapshots = path.join(repoDir, 'snapshots');
  try {
    const rev = fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8').trim();
    if (fs.existsSync(path.join(snapshots, rev))) return [path.join(snapshots, rev)];
  } catch {
    // no refs/main: fall through to every snapshot
  }
  return listDir(snapshots).map((rev) => path.join(snapshots, rev));
}

// ---- GGUF folders: LM Studio (publisher/repo/file.gguf), llama.cpp's cache, folders the user names ----

function ggufFilesUnder(root: string, source: ModelSource, depth = 4): FoundModel[] {
  const out: FoundModel[] = [];
  const walk = (dir: string, level: number): void => {
    for (const entry of listDir(dir)) {
      const full = path.join(dir, entry);
      const stat = fs.statSync(full, { throwIfNoEntry: false });
      if (stat?.isDirectory() && level < depth) walk(full, level + 1);
      else if (stat?.isFile() && isModelGguf(entry)) out.push(describeGguf(full, path.relative(root, full), source));
    }
  };
  walk(root, 0);
  return out;
}

function folderModels(folder: string): FoundModel[] {
  if (fs.statSync(folder, { throwIfNoEntry: false })?.isFile()) return [describeGguf(folder, path.basename(folder), 'folder')];
  const out: FoundModel[] = [];
  if (fs.existsSync(path.join(folder, 'config.json'))) out.push(describeFolder(folder, path.basename(folder), 'folder'));
  for (const entry of listDir(folder)) {
    const full = path.join(folder, entry);
    if (fs.existsSync(path.join(full, 'config.json'))) out.push(describeFolder(full, entry, 'folder'));
  }
  out.push(...ggufFilesUnder(folder, 'folder', 2));
  return out;
}

/** Vision projectors (mmproj-*.gguf) are not language models; a later part of a split model opens from its first. */
function isModelGguf(name: string): boolean {
  return /\.gguf$/i.test(name) && !/^mmproj/i.test(name) && (splitPartOf(name)?.no ?? 1) === 1;
}

// ---- Ollama: manifests/<registry>/<namespace>/<model>/<tag> name the model layer's blob ----

function ollamaModels(root: string): FoundModel[] {
  const out: FoundModel[] = [];
  const manifests = path.join(root, 'manifests');
  for (const registry of listDir(manifests)) {
    for (const namespace of listDir(path.join(manifests, registry))) {
      for (const model of listDir(path.join(manifests, registry, namespace))) {
        for (const tag of listDir(path.join(manifests, registry, namespace, model))) {
          const name = `${namespace === 'library' ? '' : `${namespace}/`}${model}:${tag}`;
          const manifestFile = path.join(manifests, registry, namespace, model, tag);
          try {
            const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { layers?: Array<{ mediaType?: string; digest?: string }> };
            const layer = manifest.layers?.find((l) => l.mediaType === 'application/vnd.ollama.image.model');
            if (!layer?.digest) throw new Error('the manifest names no model layer');
            out.push(describeGguf(path.join(root, 'blobs', layer.digest.replace(':', '-')), name, 'ollama'));
          } catch (err) {
            out.push(unloadable(name, 'ollama', 'gguf', manifestFile, `unreadable manifest: ${messageOf(err)}`));
          }
        }
      }
    }
  }
  return out;
}

// ---- describing one candidate ----

function describeFolder(dir: string, name: string, source: ModelSource): FoundModel {
  const model = unloadable(name, source, 'safetensors', dir, undefined);
  const entries = listDir(dir);
  const dangling = entries.filter((e) => fs.lstatSync(path.join(dir, e)).isSymbolicLink() && !fs.existsSync(path.join(dir, e)));
  const weights = entries.filter((e) => e.endsWith('.safetensors') && e !== 'cskv.safetensors' && !dangling.includes(e));
  model.sizeBytes = weights.reduce((sum, e) => sum + fs.statSync(path.join(dir, e)).size, 0);
  model.hasCskvFactors = fs.existsSync(defaultCskvFile(dir));
  const problems: string[] = [];
  if (dangling.length > 0) problems.push(`${dangling.join(', ')} ${dangling.length === 1 ? 'is a link' : 'are links'} to missing blobs (an interrupted download?)`);
  try {
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    model.architecture = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : undefined;
    parseModelConfig(raw, path.join(dir, 'config.json'));
  } catch (err) {
    problems.push(messageOf(err));
  }
  if (weights.length === 0) problems.push('no *.safetensors weights');
  if (!entries.includes('tokenizer.json') || dangling.includes('tokenizer.json')) problems.push('no tokenizer.json (it runs on token ids only)');
  let parameters = 0;
  const dtypes = new Map<string, number>();
  for (const w of weights) {
    try {
      const st = SafetensorsFile.open(path.join(dir, w));
      for (const t of st.tensors.values()) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        parameters += n;
        dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + n);
      }
      st.close();
    } catch (err) {
      problems.push(messageOf(err));
    }
  }
  model.parameters = parameters || undefined;
  model.quantisation = [...dtypes].sort((a, b) => b[1] - a[1])[0]?.[0];
  model.loadable = problems.length === 0;
  model.reason = problems.length ? problems.join('; ') : undefined;
  return model;
}

function describeGguf(file: string, name: string, source: ModelSource): FoundModel {
  const model = unloadable(name, source, 'gguf', file, undefined);
  let gguf: GgufFile;
  try {
    gguf = GgufFile.open(file, { arrays: false });
  } catch (err) {
    model.reason = messageOf(err);
    return model;
  }
  try {
    model.sizeBytes = gguf.fileSize;
    model.hasCskvFactors = fs.existsSync(defaultCskvFile(file));
    const arch = gguf.metadata.get('general.architecture');
    model.architecture = typeof arch === 'string' ? arch : undefined;
    const fileType = gguf.metadata.get('general.file_type');
    let parameters = 0;
    const bytesByType = new Map<string, number>();
    let undequantisable: string | undefined;
    for (const t of gguf.tensors.values()) {
      parameters += t.dims.reduce((a, b) => a * b, 1);
      bytesByType.set(t.type.name, (bytesByType.get(t.type.name) ?? 0) + t.byteLength);
      if (!undequantisable && huggingFaceName(t.name) && !canDequantise(t.type)) undequantisable = `tensor "${t.name}" is ${t.type.name}, which this runtime cannot dequantise`;
    }
    model.parameters = parameters;
    model.quantisation = (typeof fileType === 'number' && GGUF_FILE_TYPES.get(fileType)) || [...bytesByType].sort((a, b) => b[1] - a[1])[0]?.[0];
    if (!model.architecture || !GGUF_ARCHITECTURES[model.architecture]) model.reason = `architecture "${model.architecture}" is not supported (supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')})`;
    else if (undequantisable) model.reason = undequantisable;
    else if (!gguf.metadata.has('tokenizer.ggml.model')) model.reason = 'the file carries no tokenizer';
    model.loadable = model.reason === undefined;
  } finally {
    gguf.close();
  }
  return model;
}

function unloadable(name: string, source: ModelSource, format: FoundModel['format'], file: string, reason: string | undefined): FoundModel {
  return {
    name, source, format, path: file, sizeBytes: 0, architecture: undefined, parameters: undefined, quantisation: undefined,
    loadable: false, reason, hasCskvFactors: false,
  };
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
