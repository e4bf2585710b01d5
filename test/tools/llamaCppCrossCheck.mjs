// Cross-check against llama.cpp itself (not part of `npm test`: node-llama-cpp is not a dependency). Writes the
// reference fixtures as GGUF with the test-side writer, then compares, per prompt position, the next-token
// probabilities of llama.cpp (node-llama-cpp's prebuilt CPU build) with softmax(logits) of this runtime on the same
// file, and the greedy continuations. Run after `npm run build`, with node-llama-cpp installed anywhere:
//   npm install --prefix /tmp/llamacpp-peer --ignore-scripts node-llama-cpp
//   NODE_LLAMA_CPP=/tmp/llamacpp-peer/node_modules/node-llama-cpp node test/tools/llamaCppCrossCheck.mjs
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const { OnnxEngine } = require(path.join(root, 'out/src/runtime/backends/onnxEngine.js'));
const { convertFixtureToGguf, byteTokenizerMetadata } = require(path.join(root, 'out/test/support/ggufWriter.js'));
const { getLlama } = await import(path.join(process.env.NODE_LLAMA_CPP ?? 'node-llama-cpp', 'dist/index.js'));

const fixtures = process.argv.slice(2).length ? process.argv.slice(2) : ['llama-v4', 'llama-bias', 'llama-v5-llama3', 'llama-yarn-sharded', 'qwen2-v5', 'qwen2-cskv'];
const types = ['F32', 'F16', 'Q8_0'];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-llamacpp-'));
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const rows = [];
for (const name of fixtures) {
  const dir = path.join(root, 'test/fixtures/models', name);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const prompt = expected.prompt_ids;
  for (const type of types) {
    const file = path.join(work, `${name}-${type}.gguf`);
    convertFixtureToGguf(dir, file, type, byteTokenizerMetadata());
    const engine = await OnnxEngine.load(file);
    const V = engine.info.config.vocabSize;
    const ours = await engine.prefill(prompt, { logits: prompt.length });
    await engine.dispose();
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    const context = await model.createContext({ contextSize: 256, batchSize: 256, threads: 2 });
    const sequence = context.getSequence();
    const results = await sequence.controlledEvaluate(prompt.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]));
    let maxDiff = 0;
    let argmaxAgree = 0;
    prompt.forEach((_, t) => {
      const row = ours.subarray(t * V, (t + 1) * V);
      const max = Math.max(...row);
      const exp = row.map((x) => Math.exp(x - max));
      const sum = exp.reduce((a, b) => a + b, 0);
      const theirs = results[t].next.probabilities;
      let best = 0;
      for (let i = 0; i < V; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(exp[i] / sum - (theirs.get(i) ?? 0)));
        if (row[i] > row[best]) best = i;
      }
      if (theirs.entries().next().value[0] === best) argmaxAgree++;
    });
    rows.push({ fixture: name, type, positions: prompt.length, maxProbabilityDiff: maxDiff, argmaxAgree: `${argmaxAgree}/${prompt.length}` });
    await context.dispose();
    await model.dispose();
  }
}
console.table(rows);
fs.rmSync(work, { recursive: true, force: true });
