// Hostile workspaces and fast typists (issue 16): every workspace file goes through one guarded reader, and work
// cancelled while it waits for the engine is dropped when it is dequeued.
import assert from 'node:assert/strict';
import * as cp from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { type Engine } from '../../src/runtime/engine';
import { readWorkspaceFile } from '../../src/workspace/scan';
import { type SessionOptions, WorkspaceSession } from '../../src/workspace/session';
import { tempDir } from '../support/paths';
import { tinyQwenModel } from '../support/tinyQwen';

/**
 * readWorkspaceFile run in a child process with a time limit: without the guard a FIFO blocks the reader for good
 * and /dev/zero grows it without bound, which must fail this test rather than take the test runner down.
 */
function readInChild(file: string, root: string | undefined): { reason?: string; text?: string } {
  const scan = path.join(__dirname, '..', '..', 'src', 'workspace', 'scan.js');
  const script = `const r = require(${JSON.stringify(scan)}).readWorkspaceFile(${JSON.stringify(file)}, 1024 * 1024, ${JSON.stringify(root)});
process.stdout.write(JSON.stringify(r));`;
  const r = cp.spawnSync(process.execPath, ['--max-old-space-size=256', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `the reader did not come back for ${file} (signal ${r.signal}): ${r.stderr.slice(0, 300)}`);
  return JSON.parse(r.stdout) as { reason?: string; text?: string };
}

describe('the guarded workspace reader', () => {
  test('a link to a file outside the workspace is not read', () => {
    const root = tempDir('cskv-ws-');
    const outside = path.join(tempDir('cskv-outside-'), 'secret.txt');
    fs.writeFileSync(outside, 'password\n');
    fs.symlinkSync(outside, path.join(root, 'leak.txt'));
    fs.writeFileSync(path.join(root, 'ok.txt'), 'fine\n');
    assert.deepEqual(readWorkspaceFile(path.join(root, 'leak.txt'), 1024, root), { reason: 'unreadable' });
    assert.equal((readWorkspaceFile(path.join(root, 'ok.txt'), 1024, root) as { text: string }).text, 'fine\n');
  });

  test('a FIFO is refused at once instead of blocking the reader', () => {
    const root = tempDir('cskv-ws-');
    const fifo = path.join(root, 'pipe.txt');
    cp.execFileSync('mkfifo', [fifo]);
    assert.deepEqual(readInChild(fifo, root), { reason: 'unreadable' });
  });

  test('a link to a device (size 0, endless) is refused instead of read without bound', () => {
    const root = tempDir('cskv-ws-');
    fs.symlinkSync('/dev/zero', path.join(root, 'zero.txt'));
    assert.deepEqual(readInChild(path.join(root, 'zero.txt'), root), { reason: 'unreadable' });
    // Without a workspace to stay in (calibration reads the paths it is given), a device is still no file.
    assert.deepEqual(readInChild('/dev/zero', undefined), { reason: 'unreadable' });
  });

  test('the size cap is applied to what is read', () => {
    const root = tempDir('cskv-ws-');
    fs.writeFileSync(path.join(root, 'big.txt'), 'x'.repeat(2048));
    assert.deepEqual(readWorkspaceFile(path.join(root, 'big.txt'), 1024, root), { reason: 'too-large' });
    assert.equal((readWorkspaceFile(path.join(root, 'big.txt'), 2048, root) as { text: string }).text.length, 2048);
  });
});

describe('a session under a hostile workspace and a fast typist', () => {
  let model = '';
  before(() => {
    model = tinyQwenModel();
  });
  const options = (extra: Partial<SessionOptions> = {}): SessionOptions => ({
    modelDir: model, cskv: path.join(model, 'cskv-4.safetensors'), budgetTokens: 100_000, readWorkspace: true, editDebounceMs: 0, ...extra,
  });
  const events = { onStatus: () => undefined, onMemoryChanged: () => undefined };

  test('a watcher event for a link out of the workspace does not make the linked file resident', async () => {
    const root = tempDir('cskv-ws-');
    fs.writeFileSync(path.join(root, 'main.py'), 'print(1)\n');
    const outside = path.join(tempDir('cskv-outside-'), 'id_rsa');
    fs.writeFileSync(outside, 'PRIVATE KEY\n');
    const session = await WorkspaceSession.open(root, options(), events);
    try {
      await session.whenResident();
      fs.symlinkSync(outside, path.join(root, 'checked-in-link.txt'));
      session.fileChangedOnDisk(path.join(root, 'checked-in-link.txt'));
      await session.flushEdits();
      assert.deepEqual(session.workspaceContext!.layoutPaths.filter((p) => p !== ''), ['main.py']);
    } finally {
      await session.dispose();
    }
  });

  test('a completion or a question cancelled while it waits for the engine is dropped, never run', async () => {
    const root = tempDir('cskv-ws-');
    fs.writeFileSync(path.join(root, 'main.py'), 'def add(a, b):\n    return a + b\n');
    const session = await WorkspaceSession.open(root, options(), events);
    try {
      await session.whenResident();
      // Every prefill made for the cancelled requests carries their signal.
      const abort = new AbortController();
      const engine: Engine = session.engine;
      const prefill = engine.prefill.bind(engine);
      let reached = 0;
      engine.prefill = (tokens, o) => {
        if (o?.signal === abort.signal) reached++;
        return prefill(tokens, o);
      };
      const file = path.join(root, 'main.py');
      const running = session.complete({ path: file, prefix: 'x = add(', suffix: ')\n', multiline: false, maxNewTokens: 4 });
      const queued = session.complete({ path: file, prefix: 'y = add(', suffix: ')\n', multiline: false, maxNewTokens: 4, signal: abort.signal });
      const question = session.ask({ question: 'What does add do?', maxNewTokens: 4, signal: abort.signal });
      abort.abort(); // a newer keystroke, while both still wait behind the first completion
      await running;
      assert.equal(await queued, '');
      assert.deepEqual(await question, { text: '', stopReason: 'cancelled' });
      assert.equal(reached, 0, 'the cancelled completion and question never reached the engine');
    } finally {
      await session.dispose();
    }
  });
});
