// The test suite every engine backend must pass, against the committed reference fixtures
// (test/fixtures/models, made by test/tools/make_fixtures.py). A backend's test file calls runEngineSuite with
// its loader and its tolerance: 1e-4 relative for f32 backends, bf16-level for the CUDA one.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import type { Engine, EngineOptions } from '../../src/runtime/engine';
import { generate } from '../../src/runtime/generate';
import { fixturesDir, modelFixture } from '../support/paths';

export type EngineLoader = (modelDir: string, options?: EngineOptions) => Promise<Engine>;

interface CskvExpectation {
  window: number;
  bits: 16 | 8 | 4 | 2;
  groups: number;
  ranks: { k: number[]; v: number[] };
  greedy_tokens: number[];
  step_logits: number[][];
}

export interface Expected {
  prompt_ids: number[];
  greedy_tokens: number[];
  logits: number[][];
  full_step_logits: number[][];
  rope_type: string;
  cskv?: Record<string, CskvExpectation>;
}

export const MODEL_FIXTURES = fs.readdirSync(path.join(fixturesDir, 'models'))
  .filter((name) => fs.existsSync(path.join(modelFixture(name), 'expected.json'))).sort();

export function expected(name: string): Expected {
  return JSON.parse(fs.readFileSync(path.join(modelFixture(name), 'expected.json'), 'utf8')) as Expected;
}

/** max |a - b| / max |b|: the relative error of a row of logits. */
export function relativeError(actual: ArrayLike<number>, reference: ArrayLike<number>): number {
  assert.equal(actual.length, reference.length, 'logit row length');
  let diff = 0, scale = 0;
  for (let i = 0; i < reference.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - reference[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  return diff / scale;
}

/** Prefill, then feed the given tokens one at a time; returns the logits after the prompt and after each token. */
async function stepLogits(engine: Engine, prompt: number[], tokens: number[]): Promise<Float32Array[]> {
  const rows = [await engine.prefill(prompt)];
  for (const t of tokens.slice(0, -1)) rows.push(await engine.prefill([t]));
  return rows;
}

export interface SuiteOptions {
  /** Relative logit error allowed against the float64 reference (full cache, and CSKV at 16 bits). */
  tolerance: number;
  /** Allowed relative step-logit error at 8, 4 and 2 bits (quantisation codes may land one level apart). */
  quantisedTolerance: Record<8 | 4 | 2, number>;
  /**
   * False where the same tokens cut into other chunks may round differently (GPU MatMul kernels tile by shape):
   * the truncation check then compares within `tolerance` instead of bit for bit. Default true.
   */
  chunkingBitExact?: boolean;
}

export function runEngineSuite(backend: string, load: EngineLoader, options: SuiteOptions): void {
  describe(`${backend} engine against the reference fixtures`, () => {
    for (const name of MODEL_FIXTURES) {
      test(`${name}: prompt logits, decode steps and greedy tokens`, async () => {
        const exp = expected(name);
        const engine = await load(modelFixture(name), { cskv: undefined });
        try {
          const all = await engine.prefill(exp.prompt_ids, { logits: exp.prompt_ids.length });
          const V = engine.info.config.vocabSize;
          exp.logits.forEach((row, t) => {
            const err = relativeError(all.subarray(t * V, (t + 1) * V), row);
            assert.ok(err <= options.tolerance, `${name} prompt position ${t}: relative error ${err}`);
          });
          // Dynamic NTK re-rotates cached keys as the length grows; the reference does the same.
          await engine.truncate(0);
          const steps = await stepLogits(engine, exp.prompt_ids, exp.greedy_tokens);
          steps.forEach((row, i) => {
            const err = relativeError(row, exp.full_step_logits[i]!);
            assert.ok(err <= options.tolerance, `${name} decode step ${i}: relative error ${err}`);
          });
          await engine.truncate(0);
          const result = await generate(engine, exp.prompt_ids, { greedy: true, maxNewTokens: exp.greedy_tokens.length });
          assert.deepEqual(result.tokens, exp.greedy_tokens);
        } finally {
          await engine.dispose();
        }
      });
    }

    test('chunked prefill and truncation give the logits of one whole prefill (CSKV off)', async () => {
      const exp = expected('llama-v4');
      const whole = await load(modelFixture('llama-v4'));
      const chunked = await load(modelFixture('llama-v4'), { chunkSize: 3, window: 3 });
      try {
        const P = exp.prompt_ids.length;
        const a = await whole.prefill(exp.prompt_ids, { logits: P });
        const b = await chunked.prefill(exp.prompt_ids, { logits: P });
        assert.ok(relativeError(b, a) <= options.tolerance, 'chunked prefill');
        await chunked.truncate(4);
        assert.equal(chunked.length, 4);
        const again = await chunked.prefill(exp.prompt_ids.slice(4), { logits: 1 });
        assert.ok(relativeError(again, a.subarray((P - 1) * a.length / P)) <= options.tolerance, 'after truncate');
      } finally {
        await Promise.all([whole.dispose(), chunked.dispose()]);
      }
    });

    // Every fixture with factor files: qwen2-cskv (GQA, 2 kv heads) and mistral-mha (as many kv heads as heads).
    const cskvCases = MODEL_FIXTURES.flatMap((name) => Object.entries(expected(name).cskv ?? {}).map(([file, c]) => ({ name, file, c })));
    for (const { name, file, c } of cskvCases) {
      test(`${name} ${file}: bi-branch cache at ${c.bits} bits${c.groups > 1 ? `, ${c.groups} groups` : ''}`, async () => {
        const exp = expected(name);
        const dir = modelFixture(name);
        const engine = await load(dir, { cskv: path.join(dir, file) });
        try {
          assert.deepEqual(engine.info.cskv?.kRanks, c.ranks.k);
          assert.deepEqual(engine.info.cskv?.vRanks, c.ranks.v);
          assert.equal(engine.info.cskv?.window, c.window);
          const steps = await stepLogits(engine, exp.prompt_ids, c.greedy_tokens);
          const bound = c.bits === 16 ? options.tolerance * 10 : options.quantisedTolerance[c.bits];
          steps.forEach((row, i) => {
            const err = relativeError(row, c.step_logits[i]!);
            assert.ok(err <= bound, `step ${i}: relative error ${err} against the reference bi-branch cache (bound ${bound})`);
          });
          const memory = engine.memory();
          assert.equal(memory.compressedTokens, Math.floor(memory.tokens / c.window) * c.window);
          assert.ok(memory.compressedBytes > 0);
          if (c.bits === 16 || c.bits === 8) {
            await engine.truncate(0);
            const result = await generate(engine, exp.prompt_ids, { greedy: true, maxNewTokens: c.greedy_tokens.length });
            assert.deepEqual(result.tokens, c.greedy_tokens);
          }
        } finally {
          await engine.dispose();
        }
      });
    }

    test('qwen2-cskv: the compressed cache really differs from the full one (the CSKV checks can fail)', async () => {
      const exp = expected('qwen2-cskv');
      const c = exp.cskv!['cskv-2bit.safetensors']!;
      let worst = 0;
      c.step_logits.forEach((row, i) => (worst = Math.max(worst, relativeError(row, exp.full_step_logits[i]!))));
      assert.ok(worst > options.quantisedTolerance[2] * 2, `2-bit reference is only ${worst} away from the full cache`);
    });

    test('snapshot and restore: the restored cache continues bit for bit; foreign or damaged snapshots are refused', async () => {
      const exp = expected('qwen2-cskv');
      const dir = modelFixture('qwen2-cskv');
      const fourBit = path.join(dir, 'cskv-4bit.safetensors');
      const a = await load(dir, { cskv: fourBit });
      const b = await load(dir, { cskv: fourBit });
      const other = await load(dir, { cskv: path.join(dir, 'cskv.safetensors') });
      try {
        await a.prefill(exp.prompt_ids);
        for (const t of exp.greedy_tokens.slice(0, 4)) await a.prefill([t]);
        const snapshot = await a.snapshot();
        b.restore(snapshot);
        assert.equal(b.length, a.length);
        assert.deepEqual(b.memory(), a.memory());
        const next = exp.greedy_tokens.slice(4, 7);
        assert.deepEqual(Array.from(await b.prefill(next, { logits: 3 })), Array.from(await a.prefill(next, { logits: 3 })));
        assert.throws(() => other.restore(snapshot), (e: Error & { code?: string }) => e.code === 'BAD_ARGUMENT' && /another model or other CSKV settings/.test(e.message));
        assert.throws(() => b.restore(snapshot.subarray(0, snapshot.length - 7)), (e: Error & { code?: string }) => e.code === 'BAD_ARGUMENT' && /truncated|trailing/.test(e.message));
        assert.throws(() => b.restore(new Uint8Array(40)), (e: Error & { code?: string }) => e.code === 'BAD_ARGUMENT');
      } finally {
        await Promise.all([a.dispose(), b.dispose(), other.dispose()]);
      }
    });

    /** The qwen2-cskv fixture's prompt and greedy tokens (its 16-bit factors, W = 4), and `count` engines loaded with them. */
    const cskvEngines = async (count: number): Promise<{ dir: string; sequence: number[]; engines: Engine[] }> => {
      const exp = expected('qwen2-cskv');
      const dir = modelFixture('qwen2-cskv');
      const cskv = path.join(dir, 'cskv.safetensors');
      const engines = await Promise.all(Array.from({ length: count }, () => load(dir, { cskv })));
      return { dir, sequence: [...exp.prompt_ids, ...exp.cskv!['cskv.safetensors']!.greedy_tokens], engines };
    };

    test('qwen2-cskv: truncating into a block that left the window after its own chunk began it gives back the cache before it left', async () => {
      const { sequence, engines: [engine, fresh] } = await cskvEngines(2);
      try {
        // W = 4: [12, 14) begins block [12, 16), which leaves the window with the chunk [14, 18) (a completion's
        // prompt after the cursor, and its answer); the cut goes back inside it.
        for (const [from, to] of [[0, 12], [12, 14], [14, 18]] as const) await engine.prefill(sequence.slice(from, to));
        assert.equal(engine.memory().compressedTokens, 16);
        const recomputes = engine.truncationRecomputes?.(13);
        await engine.truncate(13);
        assert.equal(engine.length, 13);
        assert.equal(engine.memory().compressedTokens, 12);
        // The CPU backend keeps the rows of the blocks that left last: the cut needs no forward pass.
        if (engine.info.backend === 'onnx') assert.equal(recomputes, false);
        for (const [from, to] of [[0, 12], [12, 14]] as const) await fresh.prefill(sequence.slice(from, to));
        await fresh.truncate(13);
        const a = await engine.prefill(sequence.slice(13, 16), { logits: 3 });
        const b = await fresh.prefill(sequence.slice(13, 16), { logits: 3 });
        if (recomputes === false || (options.chunkingBitExact ?? true)) assert.deepEqual(Array.from(a), Array.from(b));
        else assert.ok(relativeError(a, b) <= options.tolerance, `relative error ${relativeError(a, b)} after the truncation`);
        assert.deepEqual(engine.memory(), fresh.memory());
      } finally {
        await Promise.all([engine.dispose(), fresh.dispose()]);
      }
    });

    test('qwen2-cskv: a one-pass call crosses block boundaries in one forward pass; a truncation into a block it entered midway recomputes it', async () => {
      const { dir, sequence, engines: [engine, chunked, fresh] } = await cskvEngines(3);
      try {
        // W = 4: [10, 19) starts inside block [8, 12) and enters [12, 16) and [16, 20) midway.
        for (const e of [engine, chunked]) await e.prefill(sequence.slice(0, 10));
        let passes = 0;
        const a = await engine.prefill(sequence.slice(10, 19), { logits: 2, onePass: true, onProgress: () => passes++ });
        const b = await chunked.prefill(sequence.slice(10, 19), { logits: 2 });
        assert.equal(passes, 1);
        assert.equal(engine.length, 19);
        assert.deepEqual(engine.memory(), chunked.memory());
        // The chunk read [8, 16) at full precision where the chunked call's later queries read it compressed: nearer
        // the full cache's logits.
        const full = await load(dir, {});
        try {
          const reference = (await full.prefill(sequence.slice(0, 19), { logits: 2 }));
          assert.ok(relativeError(a, reference) < relativeError(b, reference), `one pass ${relativeError(a, reference)}, chunked ${relativeError(b, reference)} from the full cache`);
        } finally {
          await full.dispose();
        }
        assert.equal(engine.truncationRecomputes?.(14) ?? true, true);
        await engine.truncate(14);
        // Tokens 10 and 11 were computed by the one-pass chunk as by a chunk [10, 12) (they see nothing after them);
        // [12, 14) again, as a chunk of its own. Rows of chunks of other lengths: equal within the tolerance.
        for (const [from, to] of [[0, 10], [10, 12], [12, 14]] as const) await fresh.prefill(sequence.slice(from, to));
        const after = await engine.prefill(sequence.slice(14, 17), { logits: 3 });
        const expectedAfter = await fresh.prefill(sequence.slice(14, 17), { logits: 3 });
        assert.ok(relativeError(after, expectedAfter) <= options.tolerance, `relative error ${relativeError(after, expectedAfter)} after the truncation`);
      } finally {
        await Promise.all([engine.dispose(), chunked.dispose(), fresh.dispose()]);
      }
    });

    test('qwen2-cskv: truncating into the compressed branch equals a fresh prefill cut at the block start', async () => {
      const { sequence, engines: [engine, fresh] } = await cskvEngines(2);
      try {
        const P = expected('qwen2-cskv').prompt_ids.length; // 13: inside the compressed block [12, 16) once 16 tokens are held
        await engine.prefill(sequence.slice(0, 18));
        await engine.truncate(P);
        assert.equal(engine.length, P);
        assert.equal(engine.memory().compressedTokens, 12);
        // Full-precision copies of [12, 13) were gone, so the engine recomputed them as a chunk of their own:
        // the same state as a fresh engine fed [0, 12) and then [12, 13).
        await fresh.prefill(sequence.slice(0, 12));
        await fresh.prefill(sequence.slice(12, P));
        const a = await engine.prefill(sequence.slice(P, P + 3), { logits: 3 });
        const b = await fresh.prefill(sequence.slice(P, P + 3), { logits: 3 });
        if (options.chunkingBitExact ?? true) assert.deepEqual(Array.from(a), Array.from(b));
        else assert.ok(relativeError(a, b) <= options.tolerance, `relative error ${relativeError(a, b)} after the truncation`);
        assert.deepEqual(engine.memory(), fresh.memory());
      } finally {
        await Promise.all([engine.dispose(), fresh.dispose()]);
      }
    });
  });
}
