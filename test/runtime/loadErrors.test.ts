// Every damaged or unsupported input to OnnxEngine.load must fail with a RuntimeError whose code says what kind
// of failure it is and whose message names the file and says what is wrong: never a crash, a hang or a bare
// TypeError. Each case damages a temporary copy of a fixture model; positive controls load the undamaged copies,
// so a case cannot pass because loading fails for some other reason.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import type { EngineOptions } from '../../src/runtime/engine';
import { RuntimeError, type RuntimeErrorCode } from '../../src/runtime/errors';
import { writeSafetensors } from '../../src/runtime/safetensorsWriter';
import { copyModel, modelFixture, tempDir } from '../support/paths';
import { readRaw, rewriteHeader } from '../support/rawSafetensors';

const TIMEOUT = { timeout: 60_000 };

/** Loads and disposes; a load that should have failed still leaves no sessions behind. */
async function load(dir: string, options?: EngineOptions): Promise<OnnxEngine> {
  const engine = await OnnxEngine.load(dir, options);
  await engine.dispose();
  return engine;
}

/** Asserts that loading rejects with a RuntimeError of `code` whose message contains every one of `parts`. */
async function assertLoadFails(dir: string, options: EngineOptions | undefined, code: RuntimeErrorCode, parts: (string | RegExp)[]): Promise<void> {
  await assert.rejects(load(dir, options), (err: unknown) => {
    assert.ok(err instanceof RuntimeError, `expected a RuntimeError, got ${(err as Error)?.stack ?? String(err)}`);
    assert.equal(err.code, code, `wrong code for: ${err.message}`);
    for (const part of parts) {
      const found = typeof part === 'string' ? err.message.includes(part) : part.test(err.message);
      assert.ok(found, `message ${JSON.stringify(err.message)} lacks ${String(part)}`);
    }
    return true;
  });
}

/** Writes a safetensors file whose JSON header is exactly `headerText`, followed by `data`. */
function writeRawHeader(file: string, headerText: string, data: Uint8Array = new Uint8Array(0)): void {
  const json = Buffer.from(headerText, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, data]));
}

/** Overwrites element `index` of tensor `name` in a safetensors file with NaN or +Infinity, in the tensor's dtype. */
function poison(file: string, name: string, index: number, value: 'nan' | 'inf'): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const entry = (JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>)[name]!;
  const at = 8 + n + entry.data_offsets[0];
  if (entry.dtype === 'F32') buf.writeFloatLE(value === 'nan' ? Number.NaN : Number.POSITIVE_INFINITY, at + 4 * index);
  else if (entry.dtype === 'BF16') buf.writeUInt16LE(value === 'nan' ? 0x7fc0 : 0x7f80, at + 2 * index);
  else buf.writeUInt16LE(value === 'nan' ? 0x7e00 : 0x7c00, at + 2 * index);
  fs.writeFileSync(file, buf);
}

function editConfig(dir: string, change: (config: Record<string, any>) => void): void {
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(config);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
}

function editIndex(dir: string, change: (index: Record<string, any>) => void): string {
  const file = path.join(dir, 'model.safetensors.index.json');
  const index = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(index);
  fs.writeFileSync(file, JSON.stringify(index, null, 2));
  return file;
}

const layer0 = 'model.layers.0.';

describe('load errors: safetensors container', () => {
  test('positive control: an undamaged copy of llama-v4 loads', TIMEOUT, async () => {
    const engine = await load(copyModel('llama-v4'));
    assert.equal(engine.info.config.layers, 2);
  });

  test('a file shorter than 8 bytes', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    fs.writeFileSync(file, Buffer.from([1, 2, 3, 4, 5]));
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, '5 bytes', 'shorter than the 8-byte header length']);
  });

  test('a header length past the end of the file (truncated to 300 bytes)', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    fs.truncateSync(file, 300);
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'truncated', 'runs past the end of the file (300 bytes)']);
  });

  test('a file truncated inside its data section', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    fs.truncateSync(file, fs.statSync(file).size - 1000);
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'tensor "lm_head.weight"', 'outside the data section', 'truncated']);
  });

  test('an implausibly large header length', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    const buf = fs.readFileSync(file);
    buf.writeBigUInt64LE(0xffffffffffffffffn, 0);
    fs.writeFileSync(file, buf);
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'header length', 'past the end of the file']);
  });

  test('a header that is not JSON', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    writeRawHeader(file, '{"model.norm.weight": {"dtype": "F32", ');
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'corrupt header']);
  });

  test('a header that is JSON but not an object', TIMEOUT, async () => {
    for (const header of ['[1, 2, 3]', '"F32"', 'null', '42']) {
      const dir = copyModel('llama-v4');
      const file = path.join(dir, 'model.safetensors');
      writeRawHeader(file, header);
      await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'not a JSON object']);
    }
  });

  test('a tensor entry that is not an object, or has a malformed shape or data_offsets', TIMEOUT, async () => {
    const cases: [(e: Record<string, any>) => void, string][] = [
      [(h) => { h['model.norm.weight'] = 7; }, 'entry is not an object'],
      [(h) => { h['model.norm.weight'].shape = [64, -1]; }, 'is not a list of non-negative integers'],
      [(h) => { h['model.norm.weight'].shape = '64'; }, 'is not a list of non-negative integers'],
      [(h) => { h['model.norm.weight'].data_offsets = [361472]; }, 'is not a pair of non-negative integers'],
      [(h) => { h['model.norm.weight'].data_offsets = [361472, 361727.5]; }, 'is not a pair of non-negative integers'],
    ];
    for (const [change, phrase] of cases) {
      const dir = copyModel('llama-v4');
      const file = path.join(dir, 'model.safetensors');
      rewriteHeader(file, change);
      await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'tensor "model.norm.weight"', phrase]);
    }
  });

  test('tensor data_offsets outside the data section', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    rewriteHeader(file, (h) => { h['model.norm.weight'].data_offsets = [361472, 10_000_000]; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'tensor "model.norm.weight"', 'data_offsets [361472, 10000000]', 'outside the data section']);
  });

  test('tensor data_offsets that end before they begin', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    rewriteHeader(file, (h) => { h['model.norm.weight'].data_offsets = [361728, 361472]; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'tensor "model.norm.weight"', 'outside the data section']);
  });

  test('data_offsets whose length does not match dtype × shape', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    rewriteHeader(file, (h) => { h['model.norm.weight'].data_offsets = [361472, 361600]; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'tensor "model.norm.weight"', '128 bytes of data for shape [64] F32, which needs 256']);
  });

  test('an unknown dtype string', TIMEOUT, async () => {
    // "constructor" and "toString" are properties of every object: they must not pass as dtypes either.
    for (const dtype of ['F8_E4M3', 'float32', 'constructor', 'toString', 42]) {
      const dir = copyModel('llama-v4');
      const file = path.join(dir, 'model.safetensors');
      rewriteHeader(file, (h) => { h['model.norm.weight'].dtype = dtype; });
      await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'tensor "model.norm.weight"', `unknown dtype ${JSON.stringify(dtype)}`]);
    }
  });

  test('a weight stored as I32 is unsupported', TIMEOUT, async () => {
    // A valid safetensors file (I32 is a safetensors dtype, 4 bytes like F32) whose weight is not a float.
    for (const name of [`${layer0}mlp.gate_proj.weight`, `${layer0}self_attn.k_proj.weight`, 'model.embed_tokens.weight', 'lm_head.weight']) {
      const dir = copyModel('llama-v4');
      const file = path.join(dir, 'model.safetensors');
      rewriteHeader(file, (h) => { h[name].dtype = 'I32'; });
      await assertLoadFails(dir, undefined, 'UNSUPPORTED', [file, `tensor "${name}"`, 'dtype I32', 'F32, F16 and BF16']);
    }
  });

  test('a weight of the wrong shape (k_proj transposed) names the tensor and both shapes', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    rewriteHeader(file, (h) => { h[`${layer0}self_attn.k_proj.weight`].shape = [64, 32]; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, `tensor "${layer0}self_attn.k_proj.weight"`, 'has shape [64, 32]', 'expected [32, 64]']);
  });

  test('an embedding of the wrong shape', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    rewriteHeader(file, (h) => { h['model.embed_tokens.weight'].shape = [64, 256]; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'tensor "model.embed_tokens.weight"', 'has shape [64, 256]', 'expected [256, 64]']);
  });

  test('a missing tensor is named', TIMEOUT, async () => {
    for (const name of ['model.layers.1.mlp.up_proj.weight', 'model.layers.1.self_attn.k_proj.weight', 'model.layers.0.self_attn.v_proj.weight',
      'model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']) {
      const dir = copyModel('llama-v4');
      const file = path.join(dir, 'model.safetensors');
      rewriteHeader(file, (h) => { delete h[name]; });
      await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, `missing tensor "${name}"`]);
    }
  });

  test('config.json with more layers than the weights hold names the first missing tensor', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.num_hidden_layers = 3; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [path.join(dir, 'model.safetensors'), 'missing tensor "model.layers.2.self_attn.k_proj.weight"']);
  });

  test('NaN or infinity in a weight, the embedding or the output head is refused, naming the tensor', TIMEOUT, async () => {
    for (const [name, value] of [[`${layer0}mlp.down_proj.weight`, 'nan'], [`${layer0}self_attn.q_proj.weight`, 'inf'], ['model.embed_tokens.weight', 'inf'], ['lm_head.weight', 'nan'], ['model.norm.weight', 'nan']] as const) {
      for (const weights of ['f32', 'q8'] as const) {
        const dir = copyModel('llama-v4');
        poison(path.join(dir, 'model.safetensors'), name, 5, value);
        await assertLoadFails(dir, { weights }, 'MODEL_FORMAT', [path.join(dir, 'model.safetensors'), `tensor "${name}" holds NaN or an infinite value (element 5)`]);
      }
    }
  });

  test('a checkpoint with more layers than config.json names is refused, not cut short', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.num_hidden_layers = 1; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [path.join(dir, 'config.json'), 'num_hidden_layers is 1', 'holds 2 layers']);
  });

  test('model.safetensors that is a directory, not a file', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const file = path.join(dir, 'model.safetensors');
    fs.rmSync(file);
    fs.mkdirSync(file);
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [file, 'not a regular file']);
  });
});

describe('load errors: sharded checkpoints', () => {
  test('positive control: an undamaged copy of llama-yarn-sharded loads', TIMEOUT, async () => {
    const engine = await load(copyModel('llama-yarn-sharded'));
    assert.equal(engine.info.config.rope.type, 'yarn');
  });

  test('a malformed index.json', TIMEOUT, async () => {
    const dir = copyModel('llama-yarn-sharded');
    const index = path.join(dir, 'model.safetensors.index.json');
    fs.writeFileSync(index, '{"weight_map": {"lm_head.weight": ');
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [index, 'malformed index']);
  });

  test('an index whose weight_map is not an object', TIMEOUT, async () => {
    for (const weightMap of [undefined, null, ['model-00001-of-00002.safetensors'], 'model-00001-of-00002.safetensors']) {
      const dir = copyModel('llama-yarn-sharded');
      const index = editIndex(dir, (i) => { i.weight_map = weightMap; });
      await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [index, '"weight_map" must be an object']);
    }
  });

  test('an index that is valid JSON but not an object', TIMEOUT, async () => {
    for (const text of ['null', '[]', '3']) {
      const dir = copyModel('llama-yarn-sharded');
      const index = path.join(dir, 'model.safetensors.index.json');
      fs.writeFileSync(index, text);
      await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [index, 'weight_map']);
    }
  });

  test('an index pointing to a missing shard file', TIMEOUT, async () => {
    const dir = copyModel('llama-yarn-sharded');
    const shard = path.join(dir, 'model-00002-of-00002.safetensors');
    fs.rmSync(shard);
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [shard, 'does not exist', 'model.safetensors.index.json']);
  });

  test('an index naming a tensor that its shard lacks', TIMEOUT, async () => {
    const dir = copyModel('llama-yarn-sharded');
    editIndex(dir, (i) => { i.weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors'; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT',
      [path.join(dir, 'model-00001-of-00002.safetensors'), 'missing tensor "model.norm.weight"', 'model.safetensors.index.json']);
  });

  test('an index that leaves out a tensor the model needs', TIMEOUT, async () => {
    const dir = copyModel('llama-yarn-sharded');
    const index = editIndex(dir, (i) => { delete i.weight_map['model.layers.1.mlp.up_proj.weight']; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [index, 'missing tensor "model.layers.1.mlp.up_proj.weight"']);
  });

  test('a shard name with a path separator, or naming a directory, is refused', TIMEOUT, async () => {
    // Any of these could make the loader read outside the model directory (or read a directory as a file).
    const outside = path.join(modelFixture('llama-yarn-sharded'), 'model-00002-of-00002.safetensors');
    for (const shard of ['../llama-v4/model.safetensors', outside, 'sub/model-00002-of-00002.safetensors', '..\\model.safetensors', '..', '.', '', 7]) {
      const dir = copyModel('llama-yarn-sharded');
      const index = editIndex(dir, (i) => { i.weight_map['model.norm.weight'] = shard; });
      await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [index, 'weight_map["model.norm.weight"] must be a file name in the model directory', JSON.stringify(shard)]);
    }
  });

  test('a damaged shard is named, not the index', TIMEOUT, async () => {
    const dir = copyModel('llama-yarn-sharded');
    const shard = path.join(dir, 'model-00002-of-00002.safetensors');
    fs.truncateSync(shard, 100);
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [shard, 'truncated']);
  });
});

describe('load errors: config.json', () => {
  const configOf = (dir: string): string => path.join(dir, 'config.json');

  test('config.json missing', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    fs.rmSync(configOf(dir));
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), 'cannot read the model\'s config', 'ENOENT']);
  });

  test('config.json malformed: the message includes the parse problem', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    const text = '{"architectures": ["LlamaForCausalLM"], "hidden_size": 64,, }';
    fs.writeFileSync(configOf(dir), text);
    let parseProblem = '';
    try {
      JSON.parse(text);
    } catch (err) {
      parseProblem = (err as Error).message;
    }
    assert.ok(parseProblem.length > 0);
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), 'malformed JSON', parseProblem]);
  });

  test('config.json that is not an object', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    fs.writeFileSync(configOf(dir), '["LlamaForCausalLM"]');
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), 'expected a JSON object']);
  });

  test('an unknown architecture is unsupported and the supported ones are listed', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.architectures = ['GPT2LMHeadModel']; });
    await assertLoadFails(dir, undefined, 'UNSUPPORTED', [configOf(dir), 'GPT2LMHeadModel', 'LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM']);
  });

  test('architectures missing', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { delete c.architectures; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), '"architectures" is missing']);
  });

  test('architectures as a string rather than a list says so', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.architectures = 'LlamaForCausalLM'; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), '"architectures" must be a list of class names, e.g. ["LlamaForCausalLM"], got "LlamaForCausalLM"']);
  });

  test('hidden_size missing or not a positive integer', TIMEOUT, async () => {
    for (const value of [undefined, 0, -64, 64.5, '64']) {
      const dir = copyModel('llama-v4');
      editConfig(dir, (c) => { c.hidden_size = value; });
      await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), '"hidden_size" must be a positive integer']);
    }
  });

  test('num_attention_heads not a multiple of num_key_value_heads', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.num_key_value_heads = 3; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), 'num_attention_heads (4) is not a multiple of num_key_value_heads (3)']);
  });

  test('a head dimension that is not an even integer', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.num_attention_heads = 5; c.num_key_value_heads = 5; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), 'head dimension 12.8 must be an even integer']);
  });

  test('an unknown RoPE type is unsupported', TIMEOUT, async () => {
    for (const scaling of [{ type: 'longrope', factor: 4 }, { rope_type: 'longrope', factor: 4 }]) {
      const dir = copyModel('llama-v4');
      editConfig(dir, (c) => { c.rope_scaling = scaling; });
      await assertLoadFails(dir, undefined, 'UNSUPPORTED', [configOf(dir), 'RoPE type "longrope" is not supported', 'default, linear, dynamic, yarn, llama3']);
    }
  });

  test('rope_scaling without a factor', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.rope_scaling = { type: 'linear' }; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), 'RoPE type "linear" needs a positive "factor"']);
  });

  test('rope_scaling that is not an object', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.rope_scaling = 'linear'; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [configOf(dir), '"rope_scaling" must be an object']);
  });

  test('config.json that disagrees with the weights names the tensor and both shapes', TIMEOUT, async () => {
    const dir = copyModel('llama-v4');
    editConfig(dir, (c) => { c.intermediate_size = 96; });
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT',
      [path.join(dir, 'model.safetensors'), `tensor "${layer0}mlp.gate_proj.weight" has shape [128, 64], expected [96, 64]`]);
  });
});

describe('load errors: model directory', () => {
  test('no weights at all (only config.json)', TIMEOUT, async () => {
    const dir = tempDir();
    fs.copyFileSync(path.join(modelFixture('llama-v4'), 'config.json'), path.join(dir, 'config.json'));
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [dir, 'no model.safetensors or model.safetensors.index.json']);
  });

  test('a model directory that does not exist', TIMEOUT, async () => {
    const dir = path.join(tempDir(), 'no-such-model');
    await assertLoadFails(dir, undefined, 'MODEL_FORMAT', [path.join(dir, 'config.json'), 'cannot read the model\'s config', 'ENOENT', `is ${dir} a Hugging Face model directory?`]);
  });
});

describe('load errors: cskv files', () => {
  const qwen = modelFixture('qwen2-cskv');
  const original = path.join(qwen, 'cskv.safetensors');

  /** A copy of qwen2-cskv/cskv.safetensors with its tensors or metadata changed. */
  function forgeCskv(change: (raw: ReturnType<typeof readRaw>) => void): string {
    const raw = readRaw(original);
    raw.metadata = { ...raw.metadata! };
    change(raw);
    const file = path.join(tempDir(), 'cskv.safetensors');
    writeSafetensors(file, raw.tensors, raw.metadata);
    return file;
  }

  test('positive control: the fixture cskv file and an unchanged rewrite of it load', TIMEOUT, async () => {
    const engine = await load(qwen, { cskv: original });
    assert.deepEqual(engine.info.cskv?.kRanks, [8, 12, 6]);
    const rewritten = await load(qwen, { cskv: forgeCskv(() => {}) });
    assert.deepEqual(rewritten.info.cskv?.vRanks, [10, 8, 12]);
  });

  test('NaN or infinity in a basis or a mean is refused, naming the file and the tensor', TIMEOUT, async () => {
    for (const [name, value] of [['layers.1.k.basis', 'nan'], ['layers.2.v.basis', 'inf'], ['layers.0.v.mean', 'nan']] as const) {
      const file = forgeCskv(() => {});
      poison(file, name, 3, value);
      await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, `tensor "${name}" holds NaN or an infinite value (element 3)`]);
    }
  });

  test('a cskv file for another model (layer count)', TIMEOUT, async () => {
    await assertLoadFails(modelFixture('llama-v4'), { cskv: original }, 'MODEL_FORMAT', [original, 'factors for 3 layers but the model has 2', 'made for another model']);
  });

  test('a cskv file for another model (channels)', TIMEOUT, async () => {
    const file = forgeCskv((raw) => {
      for (const [name, t] of Object.entries(raw.tensors)) {
        if (name.endsWith('.mean')) raw.tensors[name] = { dtype: 'F32', shape: [16], data: t.data.slice(0, 64) };
      }
    });
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'tensor "layers.0.k.mean" has 16 channels', 'have 32', 'made for another model']);
  });

  test('a model_fingerprint of another model', TIMEOUT, async () => {
    const file = forgeCskv((raw) => { raw.metadata!.model_fingerprint = '0000000000000000'; });
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'made for another model', 'fingerprint 0000000000000000']);
  });

  test('positive control: a model_fingerprint equal to the model\'s loads', TIMEOUT, async () => {
    const { fingerprint } = (await load(qwen)).info;
    assert.match(fingerprint, /^[0-9a-f]{16}$/);
    const file = forgeCskv((raw) => { raw.metadata!.model_fingerprint = fingerprint; });
    const engine = await load(qwen, { cskv: file });
    assert.equal(engine.info.cskv?.file, file);
  });

  test('__metadata__.format not "cskv"', TIMEOUT, async () => {
    for (const format of ['pt', undefined]) {
      const file = forgeCskv((raw) => {
        if (format === undefined) delete raw.metadata!.format;
        else raw.metadata!.format = format;
      });
      await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'not a CSKV factor file', 'expected "cskv"']);
    }
  });

  test('a model.safetensors passed as the cskv file', TIMEOUT, async () => {
    const weights = path.join(qwen, 'model.safetensors');
    await assertLoadFails(qwen, { cskv: weights }, 'MODEL_FORMAT', [weights, 'not a CSKV factor file']);
  });

  test('version "2"', TIMEOUT, async () => {
    const file = forgeCskv((raw) => { raw.metadata!.version = '2'; });
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'unsupported CSKV file version "2"']);
  });

  test('bits "3"', TIMEOUT, async () => {
    const file = forgeCskv((raw) => { raw.metadata!.bits = '3'; });
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, '__metadata__.bits must be 16, 8, 4 or 2, got "3"']);
  });

  test('window "0"', TIMEOUT, async () => {
    for (const window of ['0', '-4', '2.5', 'four']) {
      const file = forgeCskv((raw) => { raw.metadata!.window = window; });
      await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, `__metadata__.window must be a positive integer, got "${window}"`]);
    }
  });

  test('a basis with rank > D', TIMEOUT, async () => {
    const file = forgeCskv((raw) => { raw.tensors['layers.0.k.basis'] = { dtype: 'F32', shape: [32, 40], data: new Uint8Array(32 * 40 * 4) }; });
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'tensor "layers.0.k.basis" has shape [32, 40]', 'expected [32, rank ≤ 32]']);
  });

  test('a basis of the wrong number of dimensions', TIMEOUT, async () => {
    const file = forgeCskv((raw) => { raw.tensors['layers.1.v.basis'] = { dtype: 'F32', shape: [256], data: new Uint8Array(256 * 4) }; });
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'tensor "layers.1.v.basis" must have 2 or 3 dimensions, has 1']);
  });

  test('a missing layers.1.v.mean', TIMEOUT, async () => {
    const file = forgeCskv((raw) => { delete raw.tensors['layers.1.v.mean']; });
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'missing tensor "layers.1.v.mean"']);
  });

  test('a missing layers.2.k.basis', TIMEOUT, async () => {
    const file = forgeCskv((raw) => { delete raw.tensors['layers.2.k.basis']; });
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'missing tensor "layers.2.k.basis"']);
  });

  test('a cskv file that does not exist', TIMEOUT, async () => {
    const file = path.join(tempDir(), 'cskv.safetensors');
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'cannot open', 'ENOENT']);
  });

  test('a truncated cskv file', TIMEOUT, async () => {
    const file = forgeCskv(() => {});
    fs.truncateSync(file, fs.statSync(file).size - 100);
    await assertLoadFails(qwen, { cskv: file }, 'MODEL_FORMAT', [file, 'tensor "layers.2.v.mean"', 'truncated']);
  });
});
