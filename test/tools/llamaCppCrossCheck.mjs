// Cross-check against llama.cpp itself (not part of `npm test`: node-llama-cpp is not a dependency). Writes the
// reference fixtures as GGUF with the test-side writer, then compares, per prompt position, the next-token
// probabilities of llama.cpp (node-llama-cpp's prebuilt CPU build) with softmax(logits / T) of this runtime on the same
// file (T = 1, or the logits' standard deviation where that is larger), and whether the argmax agrees. Run after `npm run build`, with node-llama-cpp installed anywhere:
//   npm install --prefix /tmp/llamacpp-peer --ignore-scripts node-llama-cpp
//   NODE_LLAMA_CPP=/tmp/llamacpp-peer/node_modules/node-llama-cpp node test/tools/llamaCppCrossCheck.mjs
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const { OnnxEngine } = require(path.join(root, 'out/src/runtime/backends/onnxEngine.js'));
const { convertToGguf, byteTokenizerMetadata } = require(path.join(root, 'out/test/support/ggufWriter.js'));
const { writeRandomModel } = require(path.join(root, 'out/test/support/randomModel.js'));
const { getLlama } = await import(path.join(process.env.NODE_LLAMA_CPP ?? 'node-llama-cpp', 'dist/index.js'));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-llamacpp-'));
// The fixtures' rows (64) are too short for K-quants (256-value blocks): two random models of width 256 carry them,
// one as qwen2 and one relabelled llama (so its q/k rows go through llama.cpp's permutation).
const wide = (arch) => {
  const dir = path.join(work, `random-256-${arch}`);
  fs.mkdirSync(dir);
  writeRandomModel(dir, { hidden: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64, intermediate: 512, vocab: 256 });
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  if (arch === 'llama') fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['LlamaForCausalLM'], }));
  return { name: `random-256-${arch}`, dir, prompt: [3, 77, 141, 9, 250, 18, 64, 200, 5, 120], types: ['Q8_0', 'Q4_K', 'Q6_K'] };
};
const requested = process.argv.slice(2);
const models = ['llama-v4', 'llama-bias', 'llama-v5-llama3', 'llama-yarn-sharded', 'qwen2-v5', 'qwen2-cskv']
  .filter((name) => requested.length === 0 || requested.includes(name))
  .map((name) => {
    const dir = path.join(root, 'test/fixtures/models', name);
    return { name, dir, prompt: JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')).prompt_ids, types: ['F32', 'F16', 'Q8_0'] };
  });
for (const arch of ['qwen2', 'llama']) if (requested.length === 0 || requested.includes(`random-256-${arch}`)) models.push(wide(arch));
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const rows = [];
for (const { name, dir, prompt, types } of models) {
  for (const type of types) {
    const file = path.join(work, `${name}-${type}.gguf`);
    convertToGguf(dir, file, type, { metadata: byteTokenizerMetadata() });
    const engine = await OnnxEngine.load(file);
    const V = engine.info.config.vocabSize;
    const ours = await engine.prefill(prompt, { logits: prompt.length });
    await engine.dispose();
    // The same prompt on the unquantised model (its F32 GGUF): the scale a quantisation error has.
    const unquantisedFile = path.join(work, `${name}-F32-reference.gguf`);
    if (!fs.existsSync(unquantisedFile)) convertToGguf(dir, unquantisedFile, 'F32', { metadata: byteTokenizerMetadata() });
    const original = await OnnxEngine.load(unquantisedFile);
    const unquantised = await original.prefill(prompt, { logits: prompt.length });
    await original.dispose();
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    const context = await model.createContext({ contextSize: 256, batchSize: 256, threads: 2 });
    const sequence = context.getSequence();
    // Random wide models give logits far apart, so softmax at temperature 1 is one-hot and compares nothing: both
    // sides divide the logits by their standard deviation (llama.cpp's temperature sampler divides by it too).
    const mean = ours.reduce((a, b) => a + b, 0) / ours.length;
    const temperature = Math.max(1, Math.sqrt(ours.reduce((a, b) => a + (b - mean) ** 2, 0) / ours.length));
    const results = await sequence.controlledEvaluate(prompt.map((t) => [t, { generateNext: { probabilities: true, options: { temperature, topK: 0, topP: 1, minP: 0 } } }]));
    let maxDiff = 0;
    let quantisationDiff = 0;
    let argmaxAgree = 0;
    const softmax = (row) => {
      const max = Math.max(...row);
      const exp = row.map((x) => Math.exp((x - max) / temperature));
      const sum = exp.reduce((a, b) => a + b, 0);
      return exp.map((e) => e / sum);
    };
    prompt.forEach((_, t) => {
      const row = ours.subarray(t * V, (t + 1) * V);
      const p = softmax(row);
      const q = softmax(unquantised.subarray(t * V, (t + 1) * V));
      const theirs = results[t].next.probabilities;
      let best = 0;
      for (let i = 0; i < V; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(p[i] - (theirs.get(i) ?? 0)));
        quantisationDiff = Math.max(quantisationDiff, Math.abs(p[i] - q[i]));
        if (row[i] > row[best]) best = i;
      }
      if (theirs.entries().next().value[0] === best) argmaxAgree++;
    });
    rows.push({ fixture: name, type, temperature: Number(temperature.toFixed(2)), positions: prompt.length, maxProbabilityDiff: maxDiff, vsUnquantisedModel: quantisationDiff, argmaxAgree: `${argmaxAgree}/${prompt.length}` });
    await context.dispose();
    await model.dispose();
  }
}
console.table(rows);
fs.rmSync(work, { recursive: true, force: true });
