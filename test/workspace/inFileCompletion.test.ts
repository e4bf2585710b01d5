// Completions in the file typed in continue the resident file itself (session.ts complete, the 'in-file' path): the
// layout's last file is laid out for FIM, a completion cuts the cache at the first token where the file up to the
// cursor differs from the cache's copy and prefills only the rest and FIM's tail. Checked against a session that
// prefills the whole prompt from the file's start at every request (the same answers), for the prefill counts a
// keystroke and a typing pause cost, and for the cache the context re-prefills after a pause: bit for bit what a
// fresh prefill of the same layout gives, even where completions computed some of its tokens in other chunks.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { GenerationSpeed } from '../../src/protocol';
import { completionShape } from '../../src/workspace/completionShape';
import { type SessionOptions, WorkspaceSession } from '../../src/workspace/session';
import { assertSameCache } from '../support/cacheState';
import { tempDir } from '../support/paths';
import { tinyQwenModel } from '../support/tinyQwen';

const MATH = 'export function add(a: number, b: number): number {\n  return a + b;\n}\n';
/** Several prefill steps long, so the step grid and the cut inside the file matter. */
const BIG = `${Array.from({ length: 150 }, (_, i) => `export const value${i} = add(${i}, ${i * 3});`).join('\n')}\n`;
const DAY = 24 * 3600 * 1000;

function workspace(): string {
  const root = tempDir('cskv-infile-');
  fs.mkdirSync(path.join(root, 'src'));
  fs.writeFileSync(path.join(root, 'src/math.ts'), MATH);
  fs.writeFileSync(path.join(root, 'src/big.ts'), BIG);
  ageInOrder(root, ['src/math.ts', 'src/big.ts']);
  return root;
}

/** Distinct modification times in the given order (oldest first): the last is laid out last, for FIM. */
function ageInOrder(root: string, files: string[]): void {
  const now = Date.now() / 1000;
  files.forEach((f, i) => fs.utimesSync(path.join(root, f), now - 1000 + i, now - 1000 + i));
}

/** The end of the line holding `marker` in `text`. */
function lineEnd(text: string, marker: string): number {
  const at = text.indexOf(marker);
  assert.ok(at >= 0, marker);
  return text.indexOf('\n', at);
}

const events = { onStatus: () => undefined, onMemoryChanged: () => undefined };

describe('completions in the resident file', () => {
  let root = '';
  let big = '';
  let incremental: WorkspaceSession;
  let fromFileStart: WorkspaceSession;
  const speeds: GenerationSpeed[] = [];

  before(async () => {
    const model = tinyQwenModel();
    root = workspace();
    big = path.join(root, 'src/big.ts');
    // Full cache and f32 weights: the two paths then compute the same logits up to float rounding. Edits are applied
    // by flushEdits alone (a typing pause), so what a keystroke costs is the keystroke's own work.
    const options = (reuse: boolean): SessionOptions => ({
      modelDir: model, cskv: 'off', weights: 'f32', budgetTokens: 100_000, readWorkspace: true, editDebounceMs: DAY, reuseCompletionPrompt: reuse,
    });
    incremental = await WorkspaceSession.open(root, options(true), { ...events, onSpeed: (s) => speeds.push(s) });
    fromFileStart = await WorkspaceSession.open(root, options(false), events);
    await Promise.all([incremental.whenResident(), fromFileStart.whenResident()]);
  });
  after(async () => {
    await Promise.all([incremental?.dispose(), fromFileStart?.dispose()]);
  });

  /** Completes `text` at `offset` on both sessions (the editor's change first); returns the incremental one's speed. */
  const both = async (text: string, offset: number, file = big): Promise<GenerationSpeed> => {
    const shape = completionShape(text, offset);
    assert.ok(shape, 'a completion is offered here');
    const params = { path: file, ...shape, multiline: true, maxNewTokens: 6 };
    for (const s of [incremental, fromFileStart]) s.documentChanged(file, text);
    const expected = await fromFileStart.complete(params);
    const count = speeds.length;
    const actual = await incremental.complete(params);
    assert.ok(expected.length > 0, 'the random model completes something (so equality means something)');
    assert.equal(actual, expected);
    assert.equal(speeds.length, count + 1);
    return speeds[speeds.length - 1]!;
  };
  const suffixTokens = (text: string, offset: number): number =>
    incremental.tokenizer.encode(completionShape(text, offset)!.suffix, { addSpecialTokens: false, literal: true }).length;

  test('the file is the prompt: a completion, a keystroke and the keystroke after a typing pause prefill only the cursor\'s tokens and the suffix', async () => {
    const context = incremental.workspaceContext!;
    assert.deepEqual(context.layoutPaths, ['', 'src/math.ts', 'src/big.ts']);
    const fileTokens = context.residentFiles.at(-1)!.tokens;
    assert.ok(fileTokens > 3 * 256, `big.ts is ${fileTokens} tokens`);
    const before = context.residentTokens - fileTokens;

    // The first completion already reuses the resident file up to the cursor: nothing of it is sent again.
    const cursor = lineEnd(BIG, 'value100 =');
    const first = await both(BIG, cursor);
    assert.ok(first.promptTokens > fileTokens / 2, `the prompt is the file up to the cursor (${first.promptTokens} tokens)`);
    assert.ok(first.prefilledTokens <= suffixTokens(BIG, cursor) + 6, `prefilled ${first.prefilledTokens} of ${first.promptTokens}`);
    // The cache holds the file cut at the cursor and the FIM tail; the file is no longer resident whole.
    assert.equal(incremental.engine.length, before + first.promptTokens);
    assert.equal(context.residentTokens, before);

    // Keystrokes at the cursor: the typed tokens and the suffix.
    let text = BIG;
    let at = cursor;
    for (const typed of ['\n', 'e', 'x', 'p']) {
      text = text.slice(0, at) + typed + text.slice(at);
      at += typed.length;
      const keystroke = await both(text, at);
      assert.ok(keystroke.prefilledTokens <= suffixTokens(text, at) + 6, `a keystroke prefilled ${keystroke.prefilledTokens} tokens`);
    }
    // The same request again: only the last token, for its logits.
    assert.equal((await both(text, at)).prefilledTokens, 1);

    // A typing pause: the context prefills the rest of the file again, and the next keystroke still costs only itself.
    await incremental.flushEdits();
    await fromFileStart.flushEdits();
    assert.ok(context.isSynced, 'the pause made the whole file resident again');
    assert.equal(incremental.engine.length, context.residentTokens);
    text = `${text.slice(0, at)}o${text.slice(at)}`;
    at += 1;
    const afterPause = await both(text, at);
    assert.ok(afterPause.prefilledTokens <= suffixTokens(text, at) + 6, `after a pause a keystroke prefilled ${afterPause.prefilledTokens} of ${afterPause.promptTokens} tokens`);

    // An edit above the cursor: prefilled from there on.
    const early = text.replace('value90 = add(90, 270)', 'value90 = add(90, 271)');
    const edited = await both(early, at);
    const fromEdit = incremental.tokenizer.encode(early.slice(early.indexOf('271)'), at), { addSpecialTokens: false, literal: true }).length;
    assert.ok(edited.prefilledTokens >= fromEdit && edited.prefilledTokens <= fromEdit + suffixTokens(early, at) + 8, `${edited.prefilledTokens} (${fromEdit} from the edit)`);

    // A question sees the file whole: the FIM tail is undone and the rest of the file prefilled before it is answered
    // (what the pause would do), and it is answered alike.
    assert.ok(!context.isSynced, 'the completion left the file cut at the cursor');
    const answer = await incremental.ask({ question: 'What is value90?', maxNewTokens: 3 });
    assert.equal(answer.text, (await fromFileStart.ask({ question: 'What is value90?', maxNewTokens: 3 })).text);
    assert.ok(context.isSynced, 'the question was asked over the whole file');
    assert.equal(incremental.engine.length, context.residentTokens);

    // Another file is not the layout's last: its completion carries the window after the cache.
    const math = 'export function add(a: number, b: number): number {\n  \n}\n';
    const other = await both(math, math.indexOf('\n}'), path.join(root, 'src/math.ts'));
    assert.equal(other.prefilledTokens, other.promptTokens, 'nothing of the other kind of prompt is kept for it');
  });

  test('without the document\'s text before the cursor a completion carries the window, after the cache', async () => {
    await incremental.complete({ path: big, prefix: 'export const x = ', suffix: '\n', multiline: false, maxNewTokens: 2 });
    const speed = speeds[speeds.length - 1]!;
    const window = incremental.tokenizer.encode('<|file_sep|>src/big.ts\n<|fim_prefix|>export const x = <|fim_suffix|>\n<|fim_middle|>', { addSpecialTokens: false }).length;
    assert.equal(speed.promptTokens, window, 'the header and the window, not the file');
  });
});

test('after completions in the file and a pause, the cache is bit for bit a fresh prefill of the layout (CSKV 4-bit, q8)', async () => {
  const model = tinyQwenModel();
  const root = workspace();
  const big = path.join(root, 'src/big.ts');
  const options: SessionOptions = {
    modelDir: model, cskv: path.join(model, 'cskv-4.safetensors'), budgetTokens: 100_000, readWorkspace: true, editDebounceMs: DAY,
  };
  const session = await WorkspaceSession.open(root, options, events);
  try {
    await session.whenResident();
    // A completion early in the file, then one much further down (the cursor moved): the second prefills the file
    // between them in chunks that start at the first cursor, off the step grid a fresh prefill uses.
    let text = BIG;
    for (const marker of ['value20 =', 'value120 =']) {
      const at = lineEnd(text, marker);
      await session.complete({ path: big, ...completionShape(text, at)!, maxNewTokens: 3 });
    }
    let at = lineEnd(text, 'value120 =');
    for (const typed of ['\n', 'x']) {
      text = text.slice(0, at) + typed + text.slice(at);
      at += typed.length;
      session.documentChanged(big, text);
      await session.complete({ path: big, ...completionShape(text, at)!, maxNewTokens: 3 });
    }
    await session.flushEdits();
    assert.ok(session.workspaceContext!.isSynced);

    fs.writeFileSync(big, text);
    ageInOrder(root, ['src/math.ts', 'src/big.ts']);
    const fresh = await WorkspaceSession.open(root, { ...options, storageDir: undefined }, events);
    try {
      await fresh.whenResident();
      await assertSameCache(fresh, session);
    } finally {
      await fresh.dispose();
    }
  } finally {
    await session.dispose();
  }
});

test('where the file moved in the layout (a file before it left the budget), the window is cheaper until a pause re-prefills it', async () => {
  const model = tinyQwenModel();
  const root = workspace();
  const big = path.join(root, 'src/big.ts');
  const speeds: GenerationSpeed[] = [];
  const options = (budgetTokens: number): SessionOptions => ({ modelDir: model, cskv: 'off', budgetTokens, readWorkspace: true, editDebounceMs: DAY });
  const probeSession = await WorkspaceSession.open(root, options(100_000), events);
  await probeSession.whenResident();
  const total = probeSession.workspaceContext!.targetTokens;
  await probeSession.dispose();
  // Room for a few more tokens: a new line in big.ts pushes math.ts out, and big.ts moves up to its place.
  const session = await WorkspaceSession.open(root, options(total + 2), { ...events, onSpeed: (s) => speeds.push(s) });
  try {
    await session.whenResident();
    const text = `${BIG}export const typed = 1;\n`;
    const at = text.length - 1;
    session.documentChanged(big, text);
    assert.deepEqual(session.workspaceContext!.layoutPaths, ['', 'src/big.ts']);
    await session.complete({ path: big, ...completionShape(text, at)!, maxNewTokens: 2 });
    const fileTokens = session.tokenizer.encode(text, { addSpecialTokens: false, literal: true }).length;
    const window = speeds.at(-1)!;
    assert.ok(window.promptTokens < 0.8 * fileTokens, `the window (${window.promptTokens} tokens), not the file (${fileTokens}), was prefilled after the cache`);
    // After the pause the file is at its new place, and the next keystroke continues it.
    await session.flushEdits();
    const typed = `${text.slice(0, at)} ${text.slice(at)}`;
    session.documentChanged(big, typed);
    await session.complete({ path: big, ...completionShape(typed, at + 1)!, maxNewTokens: 2 });
    const inFile = speeds.at(-1)!;
    assert.ok(inFile.promptTokens > fileTokens && inFile.prefilledTokens < 40, `${inFile.prefilledTokens} of ${inFile.promptTokens}`);
  } finally {
    await session.dispose();
  }
});

test('with CSKV, a completion that reuses the cache into its compressed branch is cut where it differs (the block\'s kept rows back) or at the block\'s start: no forward pass of its own', async () => {
  const model = tinyQwenModel();
  const root = workspace();
  const big = path.join(root, 'src/big.ts');
  const session = await WorkspaceSession.open(root, {
    modelDir: model, cskv: path.join(model, 'cskv-16.safetensors'), budgetTokens: 100_000, readWorkspace: true, editDebounceMs: DAY,
  }, events);
  try {
    await session.whenResident();
    const engine = session.engine;
    const window = engine.info.cskv!.window;
    const prefill = engine.prefill.bind(engine);
    // Every prefill call: a truncation's recompute wants no logits, the prompt's prefill does.
    const calls: Array<{ start: number; logits: number }> = [];
    engine.prefill = (tokens, options) => {
      calls.push({ start: engine.length, logits: options?.logits ?? 1 });
      return prefill(tokens, options);
    };
    let text = BIG;
    let at = lineEnd(text, 'value100 =');
    let intoCompressed = 0;
    let restored = 0;
    for (const typed of ['', '\n', 'e', 'x', 'p', 'o', 'r']) {
      text = text.slice(0, at) + typed + text.slice(at);
      at += typed.length;
      session.documentChanged(big, text);
      const compressed = Math.floor(engine.length / window) * window;
      calls.length = 0;
      await session.complete({ path: big, ...completionShape(text, at)!, maxNewTokens: 2 });
      // (After the first token, cutting the generated tokens off may recompute: that is not the prompt's cut.)
      const promptCall = calls.findIndex((c) => c.logits > 0);
      assert.equal(promptCall, 0, `keystroke "${typed}": no recompute pass before the prompt's prefill (${JSON.stringify(calls)})`);
      if (calls[0]!.start < compressed) {
        intoCompressed++;
        // Mid-block only where the engine put the block's kept rows back (the CPU backend keeps the last 256 tokens').
        if (calls[0]!.start % window !== 0) restored++;
      }
    }
    assert.ok(intoCompressed > 0, 'some cuts fell inside the compressed branch');
    assert.ok(restored > 0, 'some cuts into the compressed branch took the block\'s kept rows back instead of prefilling from its start');
  } finally {
    await session.dispose();
  }
});
