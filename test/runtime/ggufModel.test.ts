// GGUF models through the whole engine: each reference fixture written as GGUF (F32, F16, Q8_0) by the test-side
// writer (llama.cpp's conventions: q/k permutation, metadata keys, Q8_0 rounding) must give
//  - F32: exactly the logits of the safetensors model, and its greedy tokens;
//  - F16 / Q8_0: exactly the logits of a safetensors model holding the weights the file stands for (what llama.cpp
//    computes from it, up to float order), and (F16) the fixture's greedy tokens. The distance from the original
//    weights' logits is measured and printed.
// qwen2-dynamic is left out: GGUF has no dynamic-NTK RoPE (llama.cpp does not implement it).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { ModelFormatError, UnsupportedError } from '../../src/runtime/errors';
import { generate } from '../../src/runtime/generate';
import { readModelConfig } from '../../src/runtime/model/config';
import { GgufFile } from '../../src/runtime/model/ggufFile';
import { ModelWeights } from '../../src/runtime/model/weights';
import { unpermuteRows } from '../../src/runtime/model/ggufWeights';
import { dequantiseBlockwise } from '../../src/runtime/onnx/blockQuantizer';
import { float32Bytes, writeSafetensors } from '../../src/runtime/safetensorsWriter';
import { MODEL_FIXTURES, expected, relativeError } from './engineSuite';
import { type GgufWeightType, convertToGguf, ggufBytes, permuteRows, writeGguf } from '../support/ggufWriter';
import { modelFixture, tempDir } from '../support/paths';

const GGUF_FIXTURES = MODEL_FIXTURES.filter((name) => name !== 'qwen2-dynamic');

async function promptLogits(model: string, prompt: number[], newTokens = 8): Promise<{ logits: Float32Array; greedy: number[]; vocab: number }> {
  // f32 weights: the comparisons are of what the files hold, not of the 8-bit weights quantised from them.
  const engine = await OnnxEngine.load(model, { weights: 'f32' });
  try {
    const logits = await engine.prefill(prompt, { logits: prompt.length });
    await engine.truncate(0);
    const greedy = (await generate(engine, prompt, { greedy: true, maxNewTokens: newTokens })).tokens;
    return { logits, greedy, vocab: engine.info.config.vocabSize };
  } finally {
    await engine.dispose();
  }
}

/** The fixture directory with its weights replaced by `values` (F32), the same config. */
function safetensorsWith(name: string, values: Array<{ hfName: string; values: Float32Array }>, shapes: ModelWeights): string {
  const dir = tempDir('cskv-gguf-ref-');
  fs.copyFileSync(path.join(modelFixture(name), 'config.json'), path.join(dir, 'config.json'));
  const tensors = Object.fromEntries(values.map(({ hfName, values: v }) => [hfName, { dtype: 'F32' as const, shape: shapes.info(hfName).shape, data: float32Bytes(v) }]));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  return dir;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const measured: string[] = [];

describe('GGUF fixtures against the safetensors path', () => {
  for (const name of GGUF_FIXTURES) {
    for (const type of ['F32', 'F16', 'Q8_0'] as GgufWeightType[]) {
      test(`${name} as GGUF ${type}`, async () => {
        const exp = expected(name);
        const file = path.join(tempDir('cskv-gguf-'), `${name}-${type}.gguf`);
        const converted = convertToGguf(modelFixture(name), file, type);
        const original = await promptLogits(modelFixture(name), exp.prompt_ids, exp.greedy_tokens.length);
        const gguf = await promptLogits(file, exp.prompt_ids, exp.greedy_tokens.length);
        // The config read from metadata is the config.json one (up to how llama3 RoPE is spelt).
        const fromGguf = readModelConfig(file), fromJson = readModelConfig(modelFixture(name));
        for (const key of ['hiddenSize', 'layers', 'heads', 'kvHeads', 'headDim', 'intermediateSize', 'vocabSize', 'tieEmbeddings', 'qkvBias', 'slidingWindow'] as const) {
          assert.equal(fromGguf[key], fromJson[key], `${key}`);
        }
        assert.equal(fromGguf.rope.type, fromJson.rope.type);
        const relative = Math.max(...exp.prompt_ids.map((_, t) => relativeError(gguf.logits.subarray(t * gguf.vocab, (t + 1) * gguf.vocab), original.logits.subarray(t * gguf.vocab, (t + 1) * gguf.vocab))));
        measured.push(`${name} ${type}: max relative logit distance from the safetensors model ${relative.toExponential(2)}`);
        if (type === 'F32') {
          assert.ok(relative <= 1e-6, `F32 GGUF differs from safetensors by ${relative}`);
        } else {
          // The logits of the weights the file stands for, run through the safetensors path.
          const shapes = ModelWeights.open(modelFixture(name));
          let reference: Float32Array;
          try {
            reference = (await promptLogits(safetensorsWith(name, converted, shapes), exp.prompt_ids)).logits;
          } finally {
            shapes.close();
          }
          assert.ok(maxAbsDiff(gguf.logits, reference) <= 1e-5, `${type}: ${maxAbsDiff(gguf.logits, reference)} from the logits of its own weights`);
        }
        if (type !== 'Q8_0') assert.deepEqual(gguf.greedy, exp.greedy_tokens);
      });
    }
  }
  test('distances measured', () => {
    process.stderr.write(`${measured.join('\n')}\n`);
    assert.ok(measured.length > 0);
  });
});

describe('GGUF details', () => {
  test('llama q/k rows: the converter permutation and its inverse, by hand', () => {
    // One head of 4 rows: rotate-half pairs (r0, r2), (r1, r3); llama.cpp stores them interleaved r0 r2 r1 r3.
    const hf = Float32Array.from([0, 1, 2, 3]);
    assert.deepEqual([...permuteRows(hf, 4, 1)], [0, 2, 1, 3]);
    const stored = new Uint8Array(Float32Array.from([0, 2, 1, 3, 10, 12, 11, 13]).buffer);
    assert.deepEqual([...new Float32Array(unpermuteRows(stored, 8, 2, 't', 'f').buffer)], [0, 1, 2, 3, 10, 11, 12, 13]);
  });

  // The writer stores llama q/k rows in llama.cpp's order and the reader undoes it: every tensor of every fixture
  // must come back as the values the file stands for, bit for bit (F32: the safetensors values themselves).
  for (const name of GGUF_FIXTURES) {
    test(`${name}: every tensor round-trips through the writer and the reader (F32, F16)`, () => {
      const config = readModelConfig(modelFixture(name));
      const original = ModelWeights.open(modelFixture(name));
      try {
        for (const type of ['F32', 'F16'] as const) {
          const file = path.join(tempDir(), `${name}-${type}.gguf`);
          const converted = convertToGguf(modelFixture(name), file, type);
          const gguf = ModelWeights.open(file);
          const stored = GgufFile.open(file, { arrays: false });
          try {
            for (const { hfName, values } of converted) {
              const shape = original.info(hfName).shape;
              const back = gguf.readFloat32(hfName, shape);
              assert.deepEqual(new Uint32Array(back.buffer, back.byteOffset, back.length), new Uint32Array(values.buffer), `${type} ${hfName}`);
              if (type === 'F32') assert.deepEqual(back, original.readFloat32(hfName, shape), `${hfName} is the safetensors tensor`);
            }
            // In the file itself, llama-architecture q rows are permuted (llama.cpp's order) and Qwen2's are not.
            const q = stored.tensors.get('blk.0.attn_q.weight')!;
            const rowsAsStored = new Float32Array(stored.readBytes(q).slice().buffer, 0, 2 * config.hiddenSize);
            const hfQ = original.readFloat32('model.layers.0.self_attn.q_proj.weight', [config.heads * config.headDim, config.hiddenSize]);
            const permuted = config.architecture !== 'Qwen2ForCausalLM';
            if (type === 'F32') {
              // Row 1 of a head is HF row headDim/2 (the second rotate-half) under the permutation, HF row 1 otherwise.
              const expectedRow1 = permuted ? config.headDim / 2 : 1;
              assert.deepEqual(rowsAsStored.subarray(config.hiddenSize), hfQ.subarray(expectedRow1 * config.hiddenSize, (expectedRow1 + 1) * config.hiddenSize), `${name}: q row 1 as stored`);
            }
          } finally {
            gguf.close();
            stored.close();
          }
        }
      } finally {
        original.close();
      }
    });
  }

  test('CSKV factors are keyed to the fingerprint: an F32 GGUF has the safetensors fingerprint of an F32 model', async () => {
    const file = path.join(tempDir(), 'llama-v4.gguf');
    convertToGguf(modelFixture('llama-v4'), file, 'F32');
    const [a, b] = [await OnnxEngine.load(file), await OnnxEngine.load(modelFixture('llama-v4'))];
    try {
      assert.equal(a.info.fingerprint, b.info.fingerprint);
      assert.equal(a.info.modelDir, file);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  for (const name of ['llama-v4', 'qwen2-v5']) {
    test(`${name}: q8 weights from a Q8_0 GGUF are the file's own values, exactly, and the engine runs on them`, async () => {
      const file = path.join(tempDir(), `${name}-q8_0.gguf`);
      const converted = convertToGguf(modelFixture(name), file, 'Q8_0');
      const weights = ModelWeights.open(file);
      let blockwise = 0;
      try {
        for (const { hfName, values } of converted) {
          const shape = weights.info(hfName).shape;
          if (shape.length !== 2) {
            assert.equal(weights.readQ8Blocks(hfName, [shape[0]!, 1]), undefined, `${hfName} is F32 in the file`);
            continue;
          }
          const blocks = weights.readQ8Blocks(hfName, [shape[0]!, shape[1]!]);
          assert.ok(blocks, `${hfName}: a Q8_0 tensor gives 8-bit blocks`);
          // Bit for bit: the values llama.cpp's dequantiser gives (llama q/k rows back in Hugging Face order).
          assert.deepEqual(new Uint32Array(dequantiseBlockwise(blocks).buffer), new Uint32Array(values.buffer), hfName);
          blockwise++;
        }
        assert.throws(() => weights.readQ8Blocks('model.layers.0.self_attn.q_proj.weight', [1, 1]), /has shape/);
        // Embedding rows read on demand: the same values, a row range at a time.
        const table = converted.find((t) => t.hfName === 'model.embed_tokens.weight')!.values;
        const H = weights.info('model.embed_tokens.weight').shape[1]!;
        assert.deepEqual(weights.readRows('model.embed_tokens.weight', 3, 2), table.subarray(3 * H, 5 * H));
        assert.throws(() => weights.readRows('model.embed_tokens.weight', weights.info('model.embed_tokens.weight').shape[0]!, 1), /outside/);
      } finally {
        weights.close();
      }
      assert.ok(blockwise >= 7, `${blockwise} linear weights checked`);
      const safetensors = ModelWeights.open(modelFixture(name));
      try {
        assert.equal(safetensors.readQ8Blocks('model.layers.0.mlp.up_proj.weight', safetensors.info('model.layers.0.mlp.up_proj.weight').shape as [number, number]), undefined);
        const [V, H] = safetensors.info('model.embed_tokens.weight').shape as [number, number];
        assert.deepEqual(safetensors.readRows('model.embed_tokens.weight', V - 2, 2), safetensors.readFloat32('model.embed_tokens.weight', [V, H]).subarray((V - 2) * H));
      } finally {
        safetensors.close();
      }
      // The engine at q8 on the file's blocks against f32 on the same file: only its int8 activations differ.
      const exp = expected(name);
      const reference = await promptLogits(file, exp.prompt_ids, 0);
      const engine = await OnnxEngine.load(file, { weights: 'q8' });
      try {
        const logits = await engine.prefill(exp.prompt_ids, { logits: exp.prompt_ids.length });
        const V = engine.info.config.vocabSize;
        const worst = Math.max(...exp.prompt_ids.map((_, t) => relativeError(logits.subarray(t * V, (t + 1) * V), reference.logits.subarray(t * V, (t + 1) * V))));
        assert.ok(worst <= 7e-2 && worst > 1e-4, `q8 on Q8_0 blocks: relative distance ${worst} from f32 on the same file`);
      } finally {
        await engine.dispose();
      }
    });
  }

  const minimal = (arch: string, tensorType = 0, extra: Array<[string, any]> = []): Buffer => ggufBytes([
    ['general.architecture', ['string', arch]], [`${arch}.block_count`, ['u32', 1]], [`${arch}.embedding_length`, ['u32', 32]],
    [`${arch}.feed_forward_length`, ['u32', 32]], [`${arch}.attention.head_count`, ['u32', 2]], [`${arch}.attention.layer_norm_rms_epsilon`, ['f32', 1e-6]],
    ...extra,
  ], [{ name: 'token_embd.weight', typeId: tensorType, dims: [32, 8], data: new Uint8Array(32 * 8 * 4) }]);

  test('bad files are named with what is wrong', () => {
    const dir = tempDir();
    const write = (name: string, bytes: Uint8Array): string => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      return f;
    };
    const good = minimal('llama');
    const truncated = write('truncated.gguf', good.subarray(0, good.length - 100));
    assert.throws(() => readModelConfig(truncated), (e: unknown) => e instanceof ModelFormatError && e.file === truncated && /truncated: tensor "token_embd.weight"/.test(e.message));
    const header = write('header.gguf', good.subarray(0, 40));
    assert.throws(() => readModelConfig(header), (e: unknown) => e instanceof ModelFormatError && /truncated/.test(e.message));
    const notGguf = write('text.gguf', Buffer.from('hello world, this is not a model at all'));
    assert.throws(() => readModelConfig(notGguf), /not a GGUF file/);
    const arch = write('gemma.gguf', minimal('gemma'));
    assert.throws(() => readModelConfig(arch), (e: unknown) => e instanceof UnsupportedError && /architecture "gemma" is not supported/.test(e.message));
    const unknownType = write('unknown.gguf', minimal('llama', 99));
    assert.throws(() => readModelConfig(unknownType), /tensor "token_embd.weight" has unknown ggml type id 99/);
    const vocab = write('vocab.gguf', minimal('llama', 0, [['llama.vocab_size', ['u32', 9]]]));
    assert.throws(() => readModelConfig(vocab), /llama.vocab_size 9 does not match tensor "token_embd.weight" with 8 rows/);
  });

  test('a tensor type without a dequantiser is refused naming the tensor and its type', () => {
    const file = path.join(tempDir(), 'q2k.gguf');
    // Q2_K (id 10): 256-element blocks of 84 bytes, so a [8, 256] embedding.
    writeGguf(file, [
      ['general.architecture', ['string', 'llama']], ['llama.block_count', ['u32', 1]], ['llama.embedding_length', ['u32', 256]],
      ['llama.feed_forward_length', ['u32', 32]], ['llama.attention.head_count', ['u32', 2]], ['llama.attention.layer_norm_rms_epsilon', ['f32', 1e-6]],
    ], [{ name: 'token_embd.weight', typeId: 10, dims: [256, 8], data: new Uint8Array(8 * 84) }]);
    const w = ModelWeights.open(file);
    try {
      assert.throws(() => w.readFloat32('model.embed_tokens.weight', [8, 256]),
        (e: unknown) => e instanceof UnsupportedError && e.message.startsWith(`${file}: tensor "token_embd.weight" has type Q2_K`));
    } finally {
      w.close();
    }
  });
});
