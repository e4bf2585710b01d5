// A keystroke during a typing pause's re-prefill of the file typed in (workspaceContext.ts syncLoop): its completion
// waits for the one prefill step in flight, at most DEFAULT_STEP_TOKENS long, and the re-prefill stops there instead of
// taking the engine between keystrokes; the next pause finishes it. Counted in engine calls and tokens, not time.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { completionShape } from '../../src/workspace/completionShape';
import { WorkspaceSession } from '../../src/workspace/session';
import { DEFAULT_STEP_TOKENS } from '../../src/workspace/workspaceContext';
import { tempDir } from '../support/paths';
import { tinyQwenModel } from '../support/tinyQwen';

const BIG = `${Array.from({ length: 150 }, (_, i) => `export const value${i} = add(${i}, ${i * 3});`).join('\n')}\n`;
const DAY = 24 * 3600 * 1000;

test('a keystroke during the pause\'s re-prefill is served after the step in flight, and the re-prefill stops there', async () => {
  const root = tempDir('cskv-typing-');
  fs.mkdirSync(path.join(root, 'src'));
  fs.writeFileSync(path.join(root, 'src/big.ts'), BIG);
  const big = path.join(root, 'src/big.ts');
  // The full cache: a truncation never recomputes, so every prefill call below is a step or a completion's prompt.
  const session = await WorkspaceSession.open(root, { modelDir: tinyQwenModel(), cskv: 'off', budgetTokens: 100_000, readWorkspace: true, editDebounceMs: DAY }, {
    onStatus: () => undefined, onMemoryChanged: () => undefined,
  });
  try {
    await session.whenResident();
    const context = session.workspaceContext!;
    // A completion near the file's start cuts it there: the pause re-prefills the rest, many steps.
    let text = BIG;
    let at = text.indexOf('\n', text.indexOf('value10 ='));
    await session.complete({ path: big, ...completionShape(text, at)!, maxNewTokens: 2 });
    const fileTokens = context.targetTokens - context.residentTokens;
    assert.ok(fileTokens > 6 * DEFAULT_STEP_TOKENS, `the re-prefill is several steps (${fileTokens} tokens)`);

    // Engine calls in order: a step is a prefill without logits, a completion's prompt wants them.
    const calls: Array<{ kind: 'step' | 'completion' | 'keystroke'; tokens: number }> = [];
    const engine = session.engine;
    const prefill = engine.prefill.bind(engine);
    let keystroke: Promise<string> | undefined;
    engine.prefill = (tokens, options) => {
      const kind = (options?.logits ?? 1) === 0 ? 'step' : 'completion';
      calls.push({ kind, tokens: tokens.length });
      // The keystroke comes while the pause's second step is in flight.
      if (kind === 'step' && calls.filter((c) => c.kind === 'step').length === 2) {
        text = `${text.slice(0, at)}\n${text.slice(at)}`;
        at += 1;
        calls.push({ kind: 'keystroke', tokens: 0 });
        session.documentChanged(big, text);
        keystroke = session.complete({ path: big, ...completionShape(text, at)!, maxNewTokens: 2 });
      }
      return prefill(tokens, options);
    };
    await session.flushEdits();
    assert.ok(keystroke, 'the keystroke came during the re-prefill');
    await keystroke;

    const typed = calls.findIndex((c) => c.kind === 'keystroke');
    const served = calls.findIndex((c) => c.kind === 'completion');
    const inFlight = calls[typed - 1]!;
    assert.equal(inFlight.kind, 'step');
    assert.ok(inFlight.tokens <= DEFAULT_STEP_TOKENS, `the step in flight was ${inFlight.tokens} tokens`);
    assert.equal(served, typed + 1, `no step between the keystroke and its completion: ${JSON.stringify(calls)}`);
    assert.deepEqual(calls.slice(served + 1).filter((c) => c.kind === 'step'), [], 'the re-prefill stopped at the keystroke');
    assert.ok(!context.isSynced, 'the file waits for the next pause');

    // The next pause finishes the file.
    engine.prefill = prefill;
    await session.flushEdits();
    assert.ok(context.isSynced);
    assert.equal(engine.length, context.residentTokens);
  } finally {
    await session.dispose();
  }
});
