// The GGUF writer, read by an independent implementation: llama.cpp loads the Qwen2 fixtures written as GGUF v3
// (F16 and Q8_0) and gives the float64 reference's logits.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { halfBitsToFloat } from '../../src/runtime/half';
import { byteTokenizerMetadata, convertToGguf, q8_0Bytes } from '../support/ggufWriter';
import { INSTALL_PEER, type Llama, type Token, cpuLlama, loadNodeLlamaCpp } from '../support/llamaCpp';
import { modelFixture, tempDir } from '../support/paths';
import { expected, relativeError } from './engineSuite';

test('Q8_0 blocks: an fp16 scale of max|x|/127 and int8 codes; rows must be whole blocks', () => {
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * (i < 32 ? 1 : 100));
  const bytes = q8_0Bytes(x);
  assert.equal(bytes.length, 2 * 34);
  const view = new DataView(bytes.buffer);
  for (let b = 0; b < 2; b++) {
    const d = halfBitsToFloat(view.getUint16(b * 34, true));
    for (let i = 0; i < 32; i++) {
      const err = Math.abs(view.getInt8(b * 34 + 2 + i) * d - x[b * 32 + i]!);
      assert.ok(err <= d * 0.51, `block ${b} value ${i}: error ${err} at scale ${d}`);
    }
  }
  assert.throws(() => q8_0Bytes(new Float32Array(48)), /multiple of 32/);
});

let llama: Llama;
// llama.cpp is a peer installed on demand (see test/support/llamaCpp.ts): without it these cases say so and skip.
const peerMissing = loadNodeLlamaCpp().then((lib) => (lib ? false : `node-llama-cpp is not installed: ${INSTALL_PEER}`));
before(async () => {
  if (!(await peerMissing)) llama = await cpuLlama();
});
after(async () => {
  await llama?.dispose();
});

// Measured: F16 1.0e-3 .. 1.3e-3 (llama.cpp multiplies F16 weights with fp16 activations), Q8_0 below 6e-2.
const BOUNDS = { F16: 5e-3, Q8_0: 6e-2 } as const;
for (const name of ['qwen2-v5', 'qwen2-cskv']) {
  for (const weights of ['F16', 'Q8_0'] as const) {
    test(`${name} as GGUF ${weights}: llama.cpp's last prompt logits within ${BOUNDS[weights]} of the reference`, async (t) => {
      const missing = await peerMissing;
      if (missing) return t.skip(missing);
      const exp = expected(name);
      const file = path.join(tempDir(), `${name}.gguf`);
      convertToGguf(modelFixture(name), file, weights, { metadata: byteTokenizerMetadata() });
      const model = await llama.loadModel({ modelPath: file });
      const context = await model.createContext({ contextSize: 256, threads: 1 });
      try {
        const P = exp.prompt_ids.length;
        const out = await context.getSequence().controlledEvaluate(
          exp.prompt_ids.map((t, i) => (i === P - 1 ? [t as Token, { generateNext: { logits: true } }] : t as Token)));
        const logits = out[P - 1]?.next?.logits;
        assert.ok(logits, 'llama.cpp returned no logits');
        const row = Array.from({ length: exp.logits[P - 1]!.length }, (_, i) => logits.get(i as Token) ?? NaN);
        const err = relativeError(row, exp.logits[P - 1]!);
        assert.ok(err <= BOUNDS[weights], `relative error ${err}`);
      } finally {
        await context.dispose();
        await model.dispose();
      }
    });
  }
}
