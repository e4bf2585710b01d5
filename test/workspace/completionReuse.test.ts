// Incremental completions on the window path (session.ts complete, completionPrompt 'window': the prompt after the
// resident context): each completion's prompt stays in the cache and the next one prefills only from its first
// changed token. Every answer must be the one a from-scratch request on the same text gives (a session that
// prefills the whole prompt each time), for edits after, inside and before the reused span. The in-file path (the
// resident file itself continued) is inFileCompletion.test.ts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { GenerationSpeed } from '../../src/protocol';
import { completionShape } from '../../src/workspace/completionShape';
import { type SessionOptions, WorkspaceSession } from '../../src/workspace/session';
import { commonPrefixLength } from '../../src/workspace/tokenPrefix';
import { tempDir } from '../support/paths';
import { tinyQwenModel } from '../support/tinyQwen';

const MAIN = [
  'import { add } from "./math";',
  '',
  'export function total(values: number[]): number {',
  '  let sum = 0;',
  '  for (const v of values) sum = add(sum, v);',
  '  return sum;',
  '}',
  '',
  'console.log(total([1, 2, 3]));',
  '',
].join('\n');

describe('incremental completions', () => {
  let root = '';
  let incremental: WorkspaceSession;
  let fromScratch: WorkspaceSession;
  const speeds: GenerationSpeed[] = [];

  before(async () => {
    const model = tinyQwenModel();
    root = tempDir('cskv-reuse-');
    fs.mkdirSync(path.join(root, 'src'));
    fs.writeFileSync(path.join(root, 'src/math.ts'), 'export function add(a: number, b: number): number {\n  return a + b;\n}\n');
    fs.writeFileSync(path.join(root, 'src/main.ts'), MAIN);
    // Full cache and f32 weights: the two paths then compute the same logits up to float rounding.
    const options = (reuse: boolean): SessionOptions => ({
      modelDir: model, cskv: 'off', weights: 'f32', budgetTokens: 100_000, readWorkspace: true, editDebounceMs: 0, reuseCompletionPrompt: reuse,
      completionPrompt: 'window',
    });
    const events = { onStatus: () => undefined, onMemoryChanged: () => undefined };
    incremental = await WorkspaceSession.open(root, options(true), { ...events, onSpeed: (s) => speeds.push(s) });
    fromScratch = await WorkspaceSession.open(root, options(false), events);
    await Promise.all([incremental.whenResident(), fromScratch.whenResident()]);
  });
  after(async () => {
    await Promise.all([incremental?.dispose(), fromScratch?.dispose()]);
  });

  /** Completes `text` at `offset` (in `file`) on both sessions; returns the incremental one's prefilled/prompt tokens. */
  const both = async (text: string, offset: number, file = 'src/main.ts'): Promise<GenerationSpeed> => {
    const shape = completionShape(text, offset);
    assert.ok(shape, 'a completion is offered here');
    const params = { path: path.join(root, file), ...shape, multiline: true, maxNewTokens: 6 };
    const residentBefore = fromScratch.engine.length;
    const expected = await fromScratch.complete(params);
    assert.equal(fromScratch.engine.length, residentBefore, 'the from-scratch path leaves the cache as it found it');
    const count = speeds.length;
    const actual = await incremental.complete(params);
    assert.ok(expected.length > 0, 'the random model completes something (so equality means something)');
    assert.equal(actual, expected);
    assert.equal(speeds.length, count + 1);
    const speed = speeds[speeds.length - 1]!;
    // The prompt stays in the cache, right after the resident context.
    assert.equal(incremental.engine.length, incremental.workspaceContext!.residentTokens + speed.promptTokens);
    return speed;
  };

  test('typing at the cursor, an edit inside the reused prompt, one before it, another file, and a question in between', async () => {
    const cursor = MAIN.indexOf('\n  return sum;');
    const first = await both(MAIN, cursor);
    assert.equal(first.prefilledTokens, first.promptTokens, 'nothing to reuse yet');

    // After the reused span: a keystroke at the cursor prefills only the tokens from the edit (plus the short suffix).
    const typed = `${MAIN.slice(0, cursor)}  i${MAIN.slice(cursor)}`;
    const keystroke = await both(typed, cursor + 3);
    const suffixTokens = incremental.tokenizer.encode(completionShape(typed, cursor + 3)!.suffix, { addSpecialTokens: false, literal: true }).length;
    assert.ok(keystroke.prefilledTokens <= suffixTokens + 6, `a keystroke prefilled ${keystroke.prefilledTokens} tokens (suffix ${suffixTokens})`);

    // The same request again: only the last token is prefilled (for its logits).
    assert.equal((await both(typed, cursor + 3)).prefilledTokens, 1);

    // Inside the reused span: an edit in the middle of the prefix costs the tokens from there on.
    const inside = typed.replace('let sum = 0;', 'let sum = 10;');
    const middle = await both(inside, cursor + 4);
    assert.ok(middle.prefilledTokens > keystroke.prefilledTokens && middle.prefilledTokens < middle.promptTokens, `${middle.prefilledTokens} of ${middle.promptTokens}`);

    // Before it: an edit of the file's first token leaves only the file header and the FIM prefix token to reuse.
    const early = inside.replace('import {', 'export {');
    const header = incremental.tokenizer.encodeParts([{ template: '<|file_sep|>' }, { literal: 'src/main.ts\n' }]).length;
    const start = await both(early, cursor + 4);
    assert.equal(start.promptTokens - start.prefilledTokens, header + 1);

    // Another file: its header differs from the path on.
    const math = 'export function add(a: number, b: number): number {\n  \n}\n';
    const other = await both(math, math.indexOf('\n}'), 'src/math.ts');
    assert.ok(other.prefilledTokens >= other.promptTokens - header);

    // A question undoes the kept prompt first, and is answered over the resident context alone.
    const resident = incremental.workspaceContext!.residentTokens;
    const answer = await incremental.ask({ question: 'What does total do?', maxNewTokens: 3 });
    const scratchAnswer = await fromScratch.ask({ question: 'What does total do?', maxNewTokens: 3 });
    assert.equal(answer.text, scratchAnswer.text);
    assert.equal(incremental.engine.length, resident);
    const again = await both(early, cursor + 4);
    assert.equal(again.prefilledTokens, again.promptTokens, 'nothing kept after the question');
  });

  test('a completion cancelled before it runs leaves the kept prompt for the next one', async () => {
    const cursor = MAIN.indexOf('\n  return sum;');
    const shape = completionShape(MAIN, cursor)!;
    const abort = new AbortController();
    abort.abort();
    // Cancelled before it ran: the previous prompt stays for the next request.
    const kept = incremental.engine.length;
    assert.equal(await incremental.complete({ path: path.join(root, 'src/main.ts'), ...shape, signal: abort.signal }), '');
    assert.equal(incremental.engine.length, kept);
    const next = await both(MAIN, cursor);
    assert.ok(next.prefilledTokens < next.promptTokens, 'the kept prompt was reused');
  });
});

test('commonPrefixLength', () => {
  assert.equal(commonPrefixLength([1, 2, 3], [1, 2, 4, 5]), 2);
  assert.equal(commonPrefixLength([], [1]), 0);
  assert.equal(commonPrefixLength([7, 8], [7, 8]), 2);
  assert.equal(commonPrefixLength([0, 7, 8, 9], [7, 8, 1], 1), 2);
  assert.equal(commonPrefixLength([1], [1], 3), 0);
});
