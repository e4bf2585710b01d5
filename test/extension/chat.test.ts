// The chat's logic without VS Code: conversations over a Memento, the context chips, @ mentions, the model's label,
// and how attachments reach the model.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MemoryStatus } from '../../src/protocol';
import { chatContext, mentionedFiles, modelLabel } from '../../src/extension/chatContext';
import { type ConversationState, Conversations, MAX_TURNS } from '../../src/extension/conversations';
import type { StoredTurn } from '../../src/extension/webviewMessages';
import { withAttachments } from '../../src/workspace/session';

function memento(initial: Record<string, unknown> = {}): ConversationState & { data: Record<string, unknown> } {
  const data = { ...initial };
  return {
    data,
    get: <T>(key: string) => data[key] as T | undefined,
    update: async (key: string, value: unknown) => {
      if (value === undefined) delete data[key];
      else data[key] = structuredClone(value);
    },
  };
}

function ids(): () => string {
  let n = 0;
  return () => `c${++n}`;
}

const qa = (q: string, a = `answer to ${q}`): StoredTurn[] => [{ role: 'user', content: q }, { role: 'assistant', content: a }];

test('conversations: kept per workspace, a new one starts empty, the earlier one can be shown again', async () => {
  let clock = 1000;
  const state = memento();
  const c = new Conversations(state, ids(), () => clock++);
  await c.append(qa('Where is the cache truncated?'));
  await c.append(qa('And why?'));
  assert.equal(c.current().turns.length, 4);
  assert.equal(c.current().title, 'Where is the cache truncated?');
  const first = c.current().id;
  await c.startNew();
  assert.equal(c.current().turns.length, 0);
  await c.append(qa('Second conversation'));
  assert.deepEqual(c.list().map((x) => x.title), ['Second conversation', 'Where is the cache truncated?']);
  assert.equal(await c.select(first), true);
  assert.equal(c.current().turns.length, 4);
  assert.equal(await c.select('no-such-id'), false);
  // A fresh instance over the same state (a reload) sees the same.
  assert.equal(new Conversations(state, ids()).current().id, first);
});

test('conversations: Clear deletes the current one and Undo brings it back once', async () => {
  const c = new Conversations(memento(), ids());
  await c.append(qa('Keep me'));
  assert.equal(c.canUndoClear, false);
  await c.clear();
  assert.equal(c.current().turns.length, 0);
  assert.equal(c.list().length, 0);
  assert.equal(c.canUndoClear, true);
  assert.equal(await c.undoClear(), true);
  assert.equal(c.current().title, 'Keep me');
  assert.equal(await c.undoClear(), false, 'only once');
  // Clearing an empty conversation leaves nothing to undo.
  await c.startNew();
  await c.clear();
  assert.equal(c.canUndoClear, false);
});

test('conversations: the history of the single-conversation chat is taken over; turns are capped', async () => {
  const state = memento({ 'cskv.chat.history': qa('An old question') });
  const c = new Conversations(state, ids());
  assert.equal(c.current().title, 'An old question');
  for (let i = 0; i < MAX_TURNS; i++) await c.append(qa(`q${i}`));
  assert.equal(c.current().turns.length, MAX_TURNS);
  assert.equal(state.data['cskv.chat.history'], undefined, 'the old key is gone once saved');
  const long = 'x'.repeat(200);
  await c.startNew();
  await c.append(qa(long));
  assert.ok(c.current().title.length <= 60 && c.current().title.endsWith('…'));
});

const memory = (resident: string[], overBudget: string[], ignored: string[] = []): MemoryStatus => ({
  backend: 'onnx',
  backendReason: 'onnx (CPU)',
  model: '/models/Qwen2.5-Coder-7B-Instruct/',
  kv: {} as MemoryStatus['kv'],
  residentTokens: 100,
  residentFiles: resident.map((p) => ({ path: p, tokens: 10 })),
  excludedFiles: [...overBudget.map((p) => ({ path: p, reason: 'over-budget' as const })), ...ignored.map((p) => ({ path: p, reason: 'ignored' as const }))],
});

test('context chips: files in and left out, the open file outside the budget warned, @ offers what can be pinned', () => {
  const m = memory(['src/a.ts', 'src/b.ts'], ['src/big.ts'], ['dist/x.js']);
  const c = chatContext(m, 'src/big.ts', { path: 'src/a.ts', lines: { start: 3, end: 9 } });
  assert.deepEqual(c.workspace, { resident: 2, leftOut: 2 });
  assert.deepEqual(c.active, { path: 'src/big.ts', resident: false });
  assert.deepEqual(c.selection, { path: 'src/a.ts', lines: { start: 3, end: 9 } });
  assert.deepEqual(c.files, ['src/a.ts', 'src/b.ts', 'src/big.ts'], 'ignored files are not offered');
  assert.equal(chatContext(m, 'src/a.ts', undefined).active?.resident, true);
  // Before the first index: no counts, and no warning about the open file.
  assert.deepEqual(chatContext(undefined, 'src/a.ts', undefined), { workspace: undefined, active: { path: 'src/a.ts', resident: true }, selection: undefined, files: [] });
});

test('@ mentions: known files only, once each, a full stop after the path is not part of it', () => {
  const files = ['src/a.ts', 'src/big.ts', 'README.md'];
  assert.deepEqual(mentionedFiles('Compare @src/a.ts with @src/big.ts. And @src/a.ts again', files), ['src/a.ts', 'src/big.ts']);
  assert.deepEqual(mentionedFiles('mail me@src/a.ts or @unknown.ts', files), [], 'an @ inside a word, or an unknown file, is no mention');
  assert.deepEqual(mentionedFiles('@README.md, please', files), ['README.md']);
});

test('model label: the folder or the GGUF file name', () => {
  assert.equal(modelLabel('/models/Qwen2.5-Coder-7B-Instruct/'), 'Qwen2.5-Coder-7B-Instruct');
  assert.equal(modelLabel('/models/qwen2.5-coder-7b-q4_k_m.gguf'), 'qwen2.5-coder-7b-q4_k_m');
  assert.equal(modelLabel(undefined), 'cskv');
  assert.equal(modelLabel('/home/me/.cache/huggingface/hub/models--Qwen--Qwen2.5-Coder-7B-Instruct/snapshots/0123abcd'), 'Qwen/Qwen2.5-Coder-7B-Instruct');
  assert.equal(modelLabel('/hub/models--Qwen--Qwen2.5-Coder-7B-Instruct-GGUF/snapshots/0123abcd/qwen2.5-coder-7b-instruct-q4_k_m.gguf'), 'qwen2.5-coder-7b-instruct-q4_k_m');
});

test('attachments reach the model fenced under their path and lines, before the question; a fence in the code cannot close it', () => {
  assert.equal(withAttachments('Why?', []), 'Why?');
  const text = withAttachments('What does this do?', [
    { path: 'src/a.ts', lines: { start: 3, end: 4 }, text: 'const x = 1;\nconst y = 2;\n' },
    { path: 'README.md', text: 'Use ```js\ncode\n``` blocks' },
  ]);
  assert.equal(text, 'src/a.ts:3-4\n```\nconst x = 1;\nconst y = 2;\n```\n\nREADME.md\n````\nUse ```js\ncode\n``` blocks\n````\n\nWhat does this do?');
});
