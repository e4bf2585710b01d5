// The sidecar's protocol handlers, driven over an in-memory JSON-RPC connection exactly as the extension's
// LanguageClient drives them over stdio: a fake session for the protocol rules, and the real WorkspaceSession on
// the tiny Qwen model for one trip through everything.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { createConnection } from 'vscode-languageserver/node';
import {
  CancellationTokenSource, DidChangeTextDocumentNotification, DidOpenTextDocumentNotification, InitializedNotification,
  InitializeRequest, InlineCompletionRequest, type InlineCompletionList, type ProtocolConnection, ResponseError,
  ShutdownRequest, StreamMessageReader, StreamMessageWriter, createProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import {
  type AnswerChunkParams, AnswerChunkNotification, AskRequest, type AskResult, MemoryChangedNotification, MemoryRequest,
  type MemoryStatus, PauseSyncRequest, RebuildContextRequest, type SidecarOptions, SidecarErrorCodes, type StatusParams, StatusNotification,
} from '../../src/protocol';
import { type OpenSession, type Session, parseSidecarOptions, serve } from '../../src/sidecar/server';
import { type SessionEvents, type SessionOptions, WorkspaceSession } from '../../src/workspace/session';
import { tempDir } from '../support/paths';
import { tinyQwenModel } from '../support/tinyQwen';

const connections: ProtocolConnection[] = [];
after(() => {
  for (const c of connections) c.dispose();
});

/** A model folder the sidecar's up-front check accepts (the fake session never reads it). */
function fakeModelDir(): string {
  const dir = tempDir('cskv-fake-model-');
  fs.writeFileSync(path.join(dir, 'config.json'), '{}');
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  return dir;
}

const MEMORY: MemoryStatus = {
  backend: 'onnx', backendReason: 'onnx (CPU), as configured', model: '/models/tiny', residentTokens: 100, residentFiles: [{ path: 'a.py', tokens: 100 }], excludedFiles: [],
  kv: {
    tokens: 100, fullTokens: 4, compressedTokens: 96, fullBytes: 1024, compressedBytes: 2048, totalBytes: 3072, fp16Bytes: 12800,
    savings: 1 - 3072 / 12800, perLayer: [{ fullBytes: 512, compressedBytes: 1024 }, { fullBytes: 512, compressedBytes: 1024 }],
    fullDtype: 'f32', bits: 4, window: 4,
  },
};

interface FakeCalls {
  opened?: { root: string; options: SessionOptions };
  events?: SessionEvents;
  asked: Array<{ question: string; activeFile?: string | undefined; maxNewTokens?: number | undefined }>;
  completed: Array<{ path: string; prefix: string; suffix: string; multiline: boolean }>;
  changed: Array<{ file: string; text: string | undefined }>;
  rebuilt: number;
  paused: number;
  disposed: number;
}

/** A session that streams `chunks` one every 5 ms until aborted. */
function fakeSession(calls: FakeCalls, chunks = ['Hello', ', ', 'world']): Session {
  return {
    async ask(p) {
      calls.asked.push({ question: p.question, activeFile: p.activeFile, maxNewTokens: p.maxNewTokens });
      let text = '';
      for (const c of chunks) {
        if (p.signal?.aborted) return { text, stopReason: 'cancelled' };
        await new Promise((r) => setTimeout(r, 5));
        text += c;
        p.onText?.(c);
      }
      // Long enough to be cancelled from the outside in the cancellation test.
      for (let i = 0; i < 400 && chunks.length > 3; i++) {
        if (p.signal?.aborted) return { text, stopReason: 'cancelled' };
        await new Promise((r) => setTimeout(r, 5));
      }
      return { text, stopReason: 'stop-token' };
    },
    async complete(p) {
      calls.completed.push({ path: p.path, prefix: p.prefix, suffix: p.suffix, multiline: p.multiline });
      return p.multiline ? 'return a + b\n' : 'a + b';
    },
    documentChanged(file, text) {
      calls.changed.push({ file, text });
    },
    fileChangedOnDisk(file) {
      calls.changed.push({ file, text: undefined });
    },
    async rebuild() {
      calls.rebuilt++;
    },
    async pauseSync() {
      calls.paused++;
      return calls.paused === 1;
    },
    memoryStatus: () => MEMORY,
    async dispose() {
      calls.disposed++;
    },
  };
}

interface Harness {
  client: ProtocolConnection;
  statuses: StatusParams[];
  chunks: AnswerChunkParams[];
  memory: MemoryStatus[];
  /** Resolves when a status with this state arrives. */
  state(state: StatusParams['state']): Promise<StatusParams>;
}

async function start(open: OpenSession, options: Partial<SidecarOptions>, root = tempDir('cskv-ws-')): Promise<Harness> {
  const up = new PassThrough();
  const down = new PassThrough();
  serve(createConnection(new StreamMessageReader(up), new StreamMessageWriter(down)), open);
  const client = createProtocolConnection(new StreamMessageReader(down), new StreamMessageWriter(up));
  connections.push(client);
  const statuses: StatusParams[] = [];
  const chunks: AnswerChunkParams[] = [];
  const memory: MemoryStatus[] = [];
  const waiting: Array<{ state: string; resolve: (s: StatusParams) => void }> = [];
  client.onNotification(StatusNotification, (s) => {
    statuses.push(s);
    for (const w of waiting.filter((w) => w.state === s.state)) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(s);
    }
  });
  client.onNotification(AnswerChunkNotification, (c) => {
    chunks.push(c);
  });
  client.onNotification(MemoryChangedNotification, (m) => {
    memory.push(m);
  });
  client.listen();
  const init = await client.sendRequest(InitializeRequest.type, {
    processId: null, rootUri: pathToFileURL(root).href, capabilities: {},
    workspaceFolders: [{ uri: pathToFileURL(root).href, name: 'ws' }],
    initializationOptions: {
      modelPath: fakeModelDir(), backend: 'auto', cskv: 'auto', contextTokenBudget: 4096, storagePath: '', workspaceTrusted: true, excludes: [], ...options,
    } satisfies SidecarOptions,
  });
  assert.ok(init.capabilities.inlineCompletionProvider, 'the sidecar offers textDocument/inlineCompletion');
  assert.ok(init.capabilities.textDocumentSync, 'and follows documents');
  await client.sendNotification(InitializedNotification.type, {});
  return {
    client, statuses, chunks, memory,
    state: (state) => {
      const seen = statuses.find((s) => s.state === state);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiting.push({ state, resolve }));
    },
  };
}

function newCalls(): FakeCalls {
  return { asked: [], completed: [], changed: [], rebuilt: 0, paused: 0, disposed: 0 };
}

function openWith(calls: FakeCalls, session: Session = fakeSession(calls)): OpenSession {
  return async (root, options, events) => {
    calls.opened = { root, options };
    calls.events = events;
    events.onStatus('loading-model', 'loading');
    events.onStatus('ready', 'ready');
    return session;
  };
}

test('initialize hands the settings to the session: model, backend, native library, budget, trust, storage', async () => {
  const calls = newCalls();
  const root = tempDir('cskv-ws-');
  const h = await start(openWith(calls), { contextTokenBudget: 1234, bits: 4, window: 8, workspaceTrusted: false, excludes: ['**/gen/**'], backend: 'cuda', nativeLibrary: '/opt/cskv/cskv_native.node' }, root);
  await h.state('ready');
  assert.equal(calls.opened?.root, root);
  assert.equal(calls.opened?.options.budgetTokens, 1234);
  assert.equal(calls.opened?.options.bits, 4);
  assert.equal(calls.opened?.options.window, 8);
  assert.equal(calls.opened?.options.readWorkspace, false, 'an untrusted workspace is not read');
  assert.deepEqual(calls.opened?.options.excludes, ['**/gen/**']);
  assert.equal(calls.opened?.options.backend, 'cuda');
  assert.equal(calls.opened?.options.nativeLibrary, '/opt/cskv/cskv_native.node');
  assert.deepEqual(h.statuses.map((s) => s.state), ['loading-model', 'loading-model', 'ready']);
  await h.client.sendRequest(ShutdownRequest.type);
  assert.equal(calls.disposed, 1, 'shutdown disposes the session');
});

test('cskv/ask streams cskv/answerChunk notifications with the request id and resolves with the answer', async () => {
  const calls = newCalls();
  const h = await start(openWith(calls), {});
  const result: AskResult = await h.client.sendRequest(AskRequest, { id: 'q1', question: 'What is this?', history: [], activeFile: '/ws/a.py', maxAnswerTokens: 2048 });
  assert.deepEqual(result, { text: 'Hello, world', stopReason: 'stop-token' });
  assert.deepEqual(h.chunks.map((c) => c.id), ['q1', 'q1', 'q1']);
  assert.equal(h.chunks.map((c) => c.text).join(''), 'Hello, world');
  assert.deepEqual(calls.asked, [{ question: 'What is this?', activeFile: '/ws/a.py', maxNewTokens: 2048 }]);
});

test('$/cancelRequest reaches the session as an aborted signal mid-stream', async () => {
  const calls = newCalls();
  const h = await start(openWith(calls, fakeSession(calls, ['a', 'b', 'c', 'd'])), {});
  const source = new CancellationTokenSource();
  const pending = h.client.sendRequest(AskRequest, { id: 'q2', question: 'long', history: [] }, source.token);
  while (h.chunks.length < 4) await new Promise((r) => setTimeout(r, 5));
  const cancelledAt = Date.now();
  source.cancel();
  const outcome: unknown = await pending.then((r) => r, (e: unknown) => e);
  // vscode-jsonrpc answers a cancelled request with RequestCancelled, or with the handler's result if it came first.
  if (outcome instanceof ResponseError) assert.equal(outcome.code, -32800);
  else assert.equal((outcome as AskResult).stopReason, 'cancelled');
  assert.ok(Date.now() - cancelledAt < 1000, 'the stream stops promptly');
});

test('a model folder that does not exist: a failed status that says so, and requests fail with the same message', async () => {
  const calls = newCalls();
  const missing = path.join(tempDir(), 'no-such-model');
  const h = await start(openWith(calls), { modelPath: missing });
  const failed = await h.state('failed');
  assert.match(failed.message, /does not exist/);
  assert.ok(failed.message.includes(missing));
  assert.equal(calls.opened, undefined, 'no session is opened');
  await assert.rejects(h.client.sendRequest(AskRequest, { id: 'q', question: 'x', history: [] }), (e: ResponseError<unknown>) => {
    assert.equal(e.code, SidecarErrorCodes.ModelUnavailable);
    assert.match(e.message, /does not exist/);
    return true;
  });
  // The inline completion of a dead model is empty, never an error popup while typing.
  const doc = pathToFileURL(path.join(tempDir(), 'a.py')).href;
  await h.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: doc, languageId: 'python', version: 1, text: 'x = ' } });
  const list = await h.client.sendRequest(InlineCompletionRequest.type, { textDocument: { uri: doc }, position: { line: 0, character: 4 }, context: { triggerKind: 2 } });
  assert.deepEqual((list as InlineCompletionList).items, []);
});

test('a folder that is not a model, and a model that fails to load, each give a failed status naming the problem', async () => {
  const notModel = tempDir('cskv-not-model-');
  const h1 = await start(openWith(newCalls()), { modelPath: notModel });
  assert.match((await h1.state('failed')).message, /not a model folder: config\.json and tokenizer\.json not found/);

  const h2 = await start(async () => {
    throw new Error('/m/model.safetensors: truncated file');
  }, {});
  assert.match((await h2.state('failed')).message, /cannot load the model: \/m\/model\.safetensors: truncated file/);
  await assert.rejects(h2.client.sendRequest(MemoryRequest), /truncated file/);
});

test('inline completion: prefix and suffix around the cursor, multi-line at a block start, one line elsewhere', async () => {
  const calls = newCalls();
  const root = tempDir('cskv-ws-');
  const h = await start(openWith(calls), {}, root);
  await h.state('ready');
  const file = path.join(root, 'm.py');
  const uri = pathToFileURL(file).href;
  const text = 'def add(a, b):\n    \n\nx = add(1, 2)\ny = ';
  await h.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'python', version: 1, text } });
  const block = await h.client.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line: 1, character: 4 }, context: { triggerKind: 2 } }) as InlineCompletionList;
  assert.equal(block.items[0]?.insertText, 'return a + b\n');
  assert.deepEqual(block.items[0]?.range, { start: { line: 1, character: 4 }, end: { line: 1, character: 4 } });
  assert.deepEqual(calls.completed[0], { path: file, prefix: 'def add(a, b):\n    ', suffix: '\n\nx = add(1, 2)\ny = ', multiline: true });
  const line = await h.client.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line: 4, character: 4 }, context: { triggerKind: 2 } }) as InlineCompletionList;
  assert.equal(line.items[0]?.insertText, 'a + b');
  assert.equal(calls.completed[1]?.multiline, false);
});

test('a new keystroke cancels the completion in flight: the session sees the abort, the answer is empty', async () => {
  const calls = newCalls();
  let aborted = false;
  const session: Session = {
    ...fakeSession(calls),
    complete: (p) => new Promise((resolve) => {
      p.signal?.addEventListener('abort', () => {
        aborted = true;
        resolve('too late');
      });
    }),
  };
  const root = tempDir('cskv-ws-');
  const h = await start(openWith(calls, session), {}, root);
  await h.state('ready');
  const uri = pathToFileURL(path.join(root, 'a.py')).href;
  await h.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'python', version: 1, text: 'x = ' } });
  const source = new CancellationTokenSource();
  const pending = h.client.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line: 0, character: 4 }, context: { triggerKind: 2 } }, source.token);
  await new Promise((r) => setTimeout(r, 50));
  source.cancel();
  const outcome: unknown = await pending.then((r) => r, (e: unknown) => e);
  if (outcome instanceof ResponseError) assert.equal(outcome.code, -32800);
  else assert.deepEqual((outcome as InlineCompletionList).items, [], 'nothing stale is shown');
  const deadline = Date.now() + 1000;
  while (!aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(aborted, 'the generation in the sidecar was told to stop');
});

test('edits reach the session; an untrusted workspace sends none and gets no completions', async () => {
  const calls = newCalls();
  const root = tempDir('cskv-ws-');
  const h = await start(openWith(calls), {}, root);
  await h.state('ready');
  const file = path.join(root, 'a.ts');
  const uri = pathToFileURL(file).href;
  await h.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'typescript', version: 1, text: 'let a = 1;\n' } });
  await h.client.sendNotification(DidChangeTextDocumentNotification.type, {
    textDocument: { uri, version: 2 }, contentChanges: [{ range: { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } }, text: 'let b = 2;\n' }],
  });
  // A binary file opened as text never reaches the model.
  const binary = pathToFileURL(path.join(root, 'blob.bin')).href;
  await h.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: binary, languageId: 'plaintext', version: 1, text: 'PK\u0003\u0004\u0000\u0000' } });
  await h.client.sendRequest(MemoryRequest); // a round trip: the notifications before it have been handled
  assert.deepEqual(calls.changed.filter((c) => c.file === file).at(-1), { file, text: 'let a = 1;\nlet b = 2;\n' });
  assert.ok(!calls.changed.some((c) => c.file.endsWith('blob.bin')));

  const untrusted = newCalls();
  const u = await start(openWith(untrusted), { workspaceTrusted: false }, root);
  await u.state('ready');
  await u.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'typescript', version: 1, text: 'let a = 1;\n' } });
  await u.client.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: 2 }, contentChanges: [{ text: 'secret = 1\n' }] });
  const list = await u.client.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line: 1, character: 0 }, context: { triggerKind: 2 } }) as InlineCompletionList;
  assert.deepEqual(list.items, []);
  assert.deepEqual(untrusted.changed, []);
  assert.deepEqual(untrusted.completed, []);
});

test('cskv/memory answers the session status; cskv/memoryChanged follows the session events; rebuild reaches it', async () => {
  const calls = newCalls();
  const h = await start(openWith(calls), {});
  await h.state('ready');
  assert.deepEqual(await h.client.sendRequest(MemoryRequest), MEMORY);
  const before = h.memory.length;
  calls.events!.onMemoryChanged();
  calls.events!.onMemoryChanged();
  const deadline = Date.now() + 2000;
  while (h.memory.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(h.memory.at(-1), MEMORY);
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(h.memory.length - before <= 2, 'bursts of memory events are throttled');
  await h.client.sendRequest(RebuildContextRequest);
  assert.equal(calls.rebuilt, 1);
  assert.equal(await h.client.sendRequest(PauseSyncRequest), true, 'the session\'s answer comes back');
  assert.equal(await h.client.sendRequest(PauseSyncRequest), false);
  assert.equal(calls.paused, 2);
});

test('initializationOptions are checked field by field', () => {
  const base = { modelPath: '/m', backend: 'auto', cskv: 'auto', contextTokenBudget: 10, storagePath: '', workspaceTrusted: true, excludes: [] };
  assert.equal(parseSidecarOptions(base).modelPath, '/m');
  assert.equal(parseSidecarOptions({ ...base, workspaceTrusted: 'yes' }).workspaceTrusted, false, 'anything but true is untrusted');
  assert.throws(() => parseSidecarOptions(undefined), /SidecarOptions/);
  assert.throws(() => parseSidecarOptions({ ...base, modelPath: '' }), /modelPath/);
  assert.throws(() => parseSidecarOptions({ ...base, backend: 'tpu' }), /backend must be "auto", "cuda", "webgpu", "onnx", got "tpu"/);
  assert.throws(() => parseSidecarOptions({ ...base, bits: 3 }), /bits must be 16, 8, 4 or 2/);
  assert.throws(() => parseSidecarOptions({ ...base, window: 0 }), /window/);
  assert.throws(() => parseSidecarOptions({ ...base, excludes: [1] }), /excludes/);
});

test('through the real WorkspaceSession: a tiny Qwen model answers in streamed text and completes code', async () => {
  const root = tempDir('cskv-ws-');
  fs.writeFileSync(path.join(root, 'util.py'), 'def add(a, b):\n    return a + b\n');
  const h = await start((r, o, e) => WorkspaceSession.open(r, o, e),
    { modelPath: tinyQwenModel(), cskv: path.join(tinyQwenModel(), 'cskv-4.safetensors'), contextTokenBudget: 2048 }, root);
  await h.state('ready');
  const result: AskResult = await h.client.sendRequest(AskRequest, { id: 'real', question: 'What does util.py do?', history: [] });
  assert.ok(['stop-token', 'max-tokens'].includes(result.stopReason));
  assert.equal(h.chunks.filter((c) => c.id === 'real').map((c) => c.text).join(''), result.text, 'the chunks add up to the answer');
  const memory = await h.client.sendRequest(MemoryRequest);
  assert.ok(memory.residentTokens > 0, 'the workspace is resident');
  assert.equal(memory.kv.bits, 4);
  const uri = pathToFileURL(path.join(root, 'util.py')).href;
  await h.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'python', version: 1, text: 'def add(a, b):\n    return a + b\n\ndef mul(a, b):\n    ' } });
  const list = await h.client.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line: 4, character: 4 }, context: { triggerKind: 2 } }) as InlineCompletionList;
  assert.ok(Array.isArray(list.items));
  await h.client.sendRequest(ShutdownRequest.type);
});
