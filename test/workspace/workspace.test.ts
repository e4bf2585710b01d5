// Whole-workspace context: what is scanned, how it is laid out, and that edits and restarts leave the cache
// exactly as a fresh prefill of the new layout would.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import type { GenerationSpeed } from '../../src/protocol';
import { contextFile } from '../../src/workspace/persistence';
import { bm25Scores, terms } from '../../src/workspace/relevance';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { scanWorkspace } from '../../src/workspace/scan';
import { type SessionOptions, WorkspaceSession } from '../../src/workspace/session';
import { assertSameCache, historyOf, probe } from '../support/cacheState';
import { tempDir } from '../support/paths';
import { tinyQwenModel } from '../support/tinyQwen';

function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  }
}

/** Gives files distinct modification times in the given order (oldest first). */
function ageInOrder(root: string, files: string[]): void {
  const now = Date.now() / 1000;
  files.forEach((f, i) => fs.utimesSync(path.join(root, f), now - 1000 + i, now - 1000 + i));
}

describe('scan', () => {
  test('honours .gitignore at every level and the editor excludes; skips vendored trees, lock files, binaries, non-UTF-8 and big files', async () => {
    const root = tempDir();
    writeTree(root, {
      '.gitignore': 'secret.txt\nlogs/\n',
      'src/app.ts': 'export const app = 1;\n',
      'src/.gitignore': '*.gen.ts\n',
      'src/model.gen.ts': 'generated\n',
      'secret.txt': 'password\n',
      'logs/today.log': 'x\n',
      'node_modules/lib/index.js': 'module.exports = 1;\n',
      'package-lock.json': '{}\n',
      'docs/readme.md': '# docs\n',
      'image.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]),
      'latin1.txt': Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]),
      'big.txt': 'x'.repeat(300 * 1024),
      'tmp/scratch.ts': 'let a;\n',
      'app.min.js': 'a()',
    });
    const { files, excluded } = await scanWorkspace(root, { excludes: ['tmp/'] });
    assert.deepEqual(files.map((f) => f.path).sort(), ['.gitignore', 'docs/readme.md', 'src/.gitignore', 'src/app.ts']);
    const reasons = Object.fromEntries(excluded.map((e) => [e.path, e.reason]));
    assert.equal(reasons['secret.txt'], 'ignored');
    assert.equal(reasons['src/model.gen.ts'], 'ignored');
    assert.equal(reasons['package-lock.json'], 'generated');
    assert.equal(reasons['app.min.js'], 'generated');
    assert.equal(reasons['image.png'], 'binary');
    assert.equal(reasons['latin1.txt'], 'binary');
    assert.equal(reasons['big.txt'], 'too-large');
  });

  test('follows symbolic links inside the workspace once and never loops or leaves it', async () => {
    const root = tempDir();
    const outside = tempDir();
    writeTree(root, { 'a/one.ts': '1\n' });
    writeTree(outside, { 'secret.ts': 'outside\n' });
    fs.symlinkSync(path.join(root, 'a'), path.join(root, 'a', 'loop'));
    fs.symlinkSync(root, path.join(root, 'a', 'up'));
    fs.symlinkSync(outside, path.join(root, 'escape'));
    fs.symlinkSync(path.join(root, 'a', 'one.ts'), path.join(root, 'alias.ts'));
    fs.symlinkSync(path.join(root, 'missing'), path.join(root, 'dangling.ts'));
    const { files } = await scanWorkspace(root);
    assert.deepEqual(files.map((f) => f.path).sort(), ['a/one.ts', 'alias.ts']);
  });
});

test('relevance: identifiers split at case and underscores, BM25 prefers the document that uses the query terms', () => {
  assert.deepEqual(terms('parseHTTPRequest max_tokens'), ['parsehttprequest', 'parse', 'httprequest', 'max_tokens', 'max', 'tokens']);
  const scores = bm25Scores(['function truncateCache() {}', 'const unrelated = 1;', 'truncate truncate cache'], 'how is the cache truncated? truncateCache');
  assert.ok(scores[0]! > scores[1]! && scores[2]! > scores[1]!);
});

describe('workspace session', () => {
  let model = '';
  before(() => {
    model = tinyQwenModel();
  });

  const options = (extra: Partial<SessionOptions> = {}): SessionOptions => ({
    modelDir: model, cskv: path.join(model, 'cskv-4.safetensors'), budgetTokens: 100_000, readWorkspace: true, editDebounceMs: 0, ...extra,
  });
  const events = { onStatus: () => undefined, onMemoryChanged: () => undefined };
  const files = {
    'README.md': '# demo\nA demo project.\n',
    'src/math.ts': 'export function add(a: number, b: number): number {\n  return a + b;\n}\n',
    'src/strings.ts': 'export const greet = (name: string) => `hello ${name}`;\n',
    'src/main.ts': 'import { add } from "./math";\nconsole.log(add(1, 2));\n',
  };
  const order = ['README.md', 'src/math.ts', 'src/strings.ts', 'src/main.ts'];


  test('layout: the repo header, files oldest first in the repo-level format, all resident', async () => {
    const root = tempDir();
    writeTree(root, files);
    ageInOrder(root, order);
    const session = await WorkspaceSession.open(root, options(), events);
    try {
      await session.whenResident();
      assert.deepEqual(session.workspaceContext!.layoutPaths, ['', ...order]);
      const text = session.tokenizer.decode(await historyOf(session));
      assert.ok(text.startsWith(`<|repo_name|>${path.basename(root)}\n<|file_sep|>README.md\n# demo`), text.slice(0, 80));
      assert.equal(session.memoryStatus().residentTokens, session.engine.length);
      assert.equal(session.memoryStatus().residentFiles.length, 4);
    } finally {
      await session.dispose();
    }
  });

  test('an edit moves the file to the end and re-prefills only the tail; the cache equals a fresh prefill of the new layout', async () => {
    const root = tempDir();
    writeTree(root, files);
    ageInOrder(root, order);
    const session = await WorkspaceSession.open(root, options(), events);
    try {
      await session.whenResident();
      const before = session.engine.length;
      const edited = 'export function add(a: number, b: number): number {\n  return b + a; // commutative\n}\n';
      session.documentChanged(path.join(root, 'src/math.ts'), edited);
      await session.flushEdits();
      assert.deepEqual(session.workspaceContext!.layoutPaths, ['', 'README.md', 'src/strings.ts', 'src/main.ts', 'src/math.ts']);
      assert.ok(session.engine.length > before);
      // A fresh session on the edited workspace, with math.ts now the newest file, lays it out the same way.
      fs.writeFileSync(path.join(root, 'src/math.ts'), edited);
      ageInOrder(root, ['README.md', 'src/strings.ts', 'src/main.ts', 'src/math.ts']);
      const fresh = await WorkspaceSession.open(root, options(), events);
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

  test('typing in the last file re-prefills it from the step before the edit on; the cache equals a fresh prefill', async () => {
    const root = tempDir();
    const big = Array.from({ length: 150 }, (_, i) => `export const value${i} = ${i} * 2;`).join('\n');
    writeTree(root, { ...files, 'src/big.ts': big });
    const ages = [...order, 'src/big.ts'];
    ageInOrder(root, ages);
    const session = await WorkspaceSession.open(root, options(), events);
    try {
      await session.whenResident();
      const engine = session.engine;
      const prefill = engine.prefill.bind(engine);
      let prefilled = 0;
      engine.prefill = (tokens, o) => {
        prefilled += tokens.length;
        return prefill(tokens, o);
      };
      const fileTokens = session.workspaceContext!.residentFiles.at(-1)!.tokens;
      assert.ok(fileTokens > 3 * 256, `big.ts is ${fileTokens} tokens: several prefill steps`);
      const edits = [
        `${big}\nexport const added = 1;`, // at the end
        `${big.replace('value100 = 100', 'value100 = 101')}\nexport const added = 1;`, // two thirds in
      ];
      for (const edited of edits) {
        prefilled = 0;
        session.documentChanged(path.join(root, 'src/big.ts'), edited);
        await session.flushEdits();
        const from = edited.indexOf(edited === edits[0] ? '\nexport const added' : 'value100 = 101');
        const after = session.tokenizer.encode(edited.slice(from), { addSpecialTokens: false, literal: true }).length;
        // At most one step before the edit and a few tokens around it, never the whole file again.
        assert.ok(prefilled <= after + 256 + 4 && prefilled < fileTokens, `re-prefilled ${prefilled} tokens of ${fileTokens} (${after} from the edit on)`);
      }
      fs.writeFileSync(path.join(root, 'src/big.ts'), edits[1]!);
      ageInOrder(root, ages);
      const fresh = await WorkspaceSession.open(root, options(), events);
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

  test('a question is appended after the resident context and truncated away; deletes and creates follow', async () => {
    const root = tempDir();
    writeTree(root, files);
    const speeds: GenerationSpeed[] = [];
    const session = await WorkspaceSession.open(root, options(), { ...events, onSpeed: (speed) => speeds.push(speed) });
    try {
      await session.whenResident();
      const resident = session.engine.length;
      let streamed = '';
      const answer = await session.ask({ question: 'What does add do?', maxNewTokens: 6, onText: (t) => (streamed += t) });
      assert.equal(streamed, answer.text);
      assert.equal(session.engine.length, resident);
      const completion = await session.complete({ path: path.join(root, 'src/main.ts'), prefix: 'console.log(', suffix: ');\n', multiline: false, maxNewTokens: 4 });
      assert.ok(!completion.includes('\n'));
      // Each generation reports its speed: the answer's 6 tokens (no stop token in a random model's first 6), then the completion.
      assert.equal(speeds[0]?.kind, 'answer');
      assert.ok(speeds[0]!.tokens >= 1 && speeds[0]!.tokens <= 6 && speeds[0]!.firstTokenMs > 0);
      assert.ok(speeds[0]!.tokens === 1 || speeds[0]!.tokensPerSecond > 0);
      assert.equal(speeds[1]?.kind, 'completion');
      assert.equal(speeds.length, 2);
      // The completion's prompt stays in the cache for the next keystroke's completion (completionReuse.test.ts).
      assert.equal(session.engine.length, resident + speeds[1]!.promptTokens);
      fs.rmSync(path.join(root, 'src/strings.ts'));
      session.fileChangedOnDisk(path.join(root, 'src/strings.ts'));
      session.documentChanged(path.join(root, 'src/new.ts'), 'export const created = true;\n');
      session.documentChanged(path.join(root, 'node_modules/x/index.js'), 'ignored\n');
      await session.flushEdits();
      const paths = session.workspaceContext!.layoutPaths;
      assert.ok(!paths.includes('src/strings.ts') && paths[paths.length - 1] === 'src/new.ts' && !paths.some((p) => p.startsWith('node_modules')));
    } finally {
      await session.dispose();
    }
  });

  test('over budget: open files and files relevant to the focus go in, the rest is reported out', async () => {
    const root = tempDir();
    const many: Record<string, string> = {};
    for (let i = 0; i < 12; i++) many[`src/file${i}.ts`] = `export const value${i} = ${i};\n`.repeat(20);
    many['src/cache.ts'] = 'export function truncateCache(length: number) { return length; }\n';
    writeTree(root, many);
    const session = await WorkspaceSession.open(root, options({ budgetTokens: 700, focus: 'where is truncateCache defined?', pinned: ['src/file3.ts'] }), events);
    try {
      await session.whenResident();
      const status = session.memoryStatus();
      assert.equal(status.gpu, undefined, 'the CPU engine reports no GPU memory (the CUDA engine\'s is checked on the GPU)');
      const resident = status.residentFiles.map((f) => f.path);
      assert.ok(resident.includes('src/cache.ts') && resident.includes('src/file3.ts'), resident.join(','));
      assert.equal(resident[resident.length - 1], 'src/file3.ts', 'open files go last');
      assert.ok(status.residentTokens <= 700);
      assert.ok(status.excludedFiles.some((e) => e.reason === 'over-budget'));
      // A file edited to more than the whole budget is left out rather than overrunning it.
      session.documentChanged(path.join(root, 'src/file5.ts'), 'export const big = 1;\n'.repeat(400));
      await session.flushEdits();
      await session.whenResident();
      const after = session.memoryStatus();
      assert.ok(after.residentTokens <= 700, `${after.residentTokens} tokens resident`);
      assert.ok(after.excludedFiles.some((e) => e.path === 'src/file5.ts' && e.reason === 'over-budget'));
      assert.ok(after.residentFiles.some((f) => f.path === 'src/cache.ts'), 'the rest stays in');
    } finally {
      await session.dispose();
    }
  });

  test('a workspace far over the budget is tokenised only as far as the budget reaches', async () => {
    const root = tempDir();
    const many: Record<string, string> = {};
    for (let i = 0; i < 300; i++) many[`src/mod${String(i).padStart(3, '0')}.ts`] = `export const item${i} = ${i};\n`.repeat(30);
    writeTree(root, many);
    const encode = ModelTokenizer.prototype.encode;
    let filesTokenised = 0;
    ModelTokenizer.prototype.encode = function (this: ModelTokenizer, text, options) {
      if (options?.literal) filesTokenised++;
      return encode.call(this, text, options);
    };
    try {
      const session = await WorkspaceSession.open(root, options({ budgetTokens: 2000 }), events);
      try {
        await session.whenResident();
        const status = session.memoryStatus();
        assert.ok(status.residentTokens <= 2000 && status.residentFiles.length >= 5, `${status.residentFiles.length} files, ${status.residentTokens} tokens`);
        assert.equal(status.excludedFiles.filter((e) => e.reason === 'over-budget').length, 300 - status.residentFiles.length);
        assert.ok(filesTokenised < 60, `${filesTokenised} of 300 files tokenised`);
      } finally {
        await session.dispose();
      }
    } finally {
      ModelTokenizer.prototype.encode = encode;
    }
  });

  test('persistence: a restart restores the saved cache bit for bit and re-prefills only what changed', async () => {
    const root = tempDir();
    const storageDir = tempDir();
    writeTree(root, files);
    ageInOrder(root, order);
    const first = await WorkspaceSession.open(root, options({ storageDir }), events);
    await first.whenResident();
    const probeBefore = Array.from(await probe(first));
    const historyBefore = await historyOf(first);
    await first.dispose();
    const saved = contextFile(storageDir, root);
    assert.ok(fs.existsSync(saved));

    let prefilled = 0;
    const second = await WorkspaceSession.open(root, options({ storageDir }), { ...events, onStatus: (_s, _m, p) => { if (p) prefilled = Math.max(prefilled, p.done); } });
    try {
      assert.deepEqual(await historyOf(second), historyBefore, 'restored before any prefill');
      await second.whenResident();
      assert.deepEqual(Array.from(await probe(second)), probeBefore);
    } finally {
      await second.dispose();
    }

    // An edit while the editor was closed: only the tail from that file on is prefilled again.
    fs.writeFileSync(path.join(root, 'src/main.ts'), 'import { add } from "./math";\nconsole.log(add(2, 3));\n');
    const third = await WorkspaceSession.open(root, options({ storageDir }), events);
    try {
      const restored = third.engine.length;
      assert.ok(restored > 0);
      await third.whenResident();
      assert.deepEqual(third.workspaceContext!.layoutPaths.slice(-1), ['src/main.ts']);
    } finally {
      await third.dispose();
    }
  });

  test('corrupt, truncated, stale and foreign saved contexts are discarded with a warning, never a crash', async () => {
    const root = tempDir();
    writeTree(root, files);
    const storageDir = tempDir();
    const first = await WorkspaceSession.open(root, options({ storageDir }), events);
    await first.whenResident();
    await first.dispose();
    const file = contextFile(storageDir, root);
    const good = fs.readFileSync(file);
    const reopen = async (extra: Partial<SessionOptions> = {}): Promise<string[]> => {
      const warnings: string[] = [];
      const s = await WorkspaceSession.open(root, options({ storageDir, log: (m) => warnings.push(m), ...extra }), events);
      await s.whenResident();
      assert.equal(s.engine.length, s.workspaceContext!.residentTokens);
      await s.dispose();
      return warnings;
    };
    fs.writeFileSync(file, good.subarray(0, good.length - 100));
    assert.match((await reopen()).join('\n'), /discarded .* truncated/);
    fs.writeFileSync(file, Buffer.concat([good.subarray(0, 20), Buffer.from('garbage'), good.subarray(27)]));
    assert.match((await reopen()).join('\n'), /discarded/);
    fs.writeFileSync(file, 'not a context at all');
    assert.match((await reopen()).join('\n'), /discarded .* not a saved context/);
    // Saved with the 16-bit factors, read with the 4-bit ones: another cache layout.
    const other = await WorkspaceSession.open(root, options({ storageDir, cskv: path.join(model, 'cskv-16.safetensors') }), events);
    await other.whenResident();
    await other.dispose();
    assert.match((await reopen()).join('\n'), /discarded .*: it does not match this session's CSKV settings/);
    // After all that the file is whole again and used.
    assert.deepEqual(await reopen(), []);
  });

  test('a paused update stops prefilling, keeps the cache equal to what is resident, answers meanwhile, and Rebuild Context resumes it', async () => {
    const root = tempDir();
    const storageDir = tempDir();
    const big: Record<string, string> = {};
    // Files of several prefill steps each, so that a pause falls inside one.
    const names = ['src/a.ts', 'src/b.ts', 'src/c.ts', 'src/d.ts'];
    names.forEach((name, i) => (big[name] = `export const value${i} = ${i} * 2; // line\n`.repeat(100)));
    writeTree(root, big);
    ageInOrder(root, names);
    let pausing: Promise<boolean> | undefined;
    let pauseAfter = Infinity;
    let progressAfterPause = 0;
    let cachedAtPause = 0;
    const statuses: string[] = [];
    // Progress can come before open() returns: the callbacks reach the session through `opened`.
    let opened: WorkspaceSession | undefined;
    const session = opened = await WorkspaceSession.open(root, options({ storageDir }), {
      onMemoryChanged: () => undefined,
      onStatus: (_state, message, p) => {
        statuses.push(message);
        if (p && pausing) progressAfterPause++;
        // Stopped from inside the update, a few prefill steps in (as a click on "Stop updating" would).
        if (opened && p && p.done < p.total && --pauseAfter === 0) {
          cachedAtPause = opened.engine.length;
          pausing = opened.pauseSync();
        }
      },
    });
    try {
      await session.whenResident();
      const context = session.workspaceContext!;
      assert.equal(await session.pauseSync(), false, 'nothing to stop once the workspace is resident');
      const whole = context.targetTokens;
      // An edit to the oldest file moves it to the end: everything after it is prefilled again.
      pauseAfter = 3;
      session.documentChanged(path.join(root, 'src/a.ts'), big['src/a.ts']!.replace('value0', 'renamed0'));
      await session.flushEdits();
      assert.equal(await pausing, true);
      progressAfterPause = 0;
      assert.ok(context.isPaused);
      assert.ok(context.residentTokens > 0 && context.residentTokens < whole, `${context.residentTokens} of ${whole} tokens resident`);
      assert.ok(cachedAtPause > context.residentTokens, 'the pause fell inside a file');
      assert.equal(session.engine.length, context.residentTokens, 'a segment cut short leaves the cache');
      const residentPaths = session.memoryStatus().residentFiles.map((f) => f.path);
      assert.deepEqual(residentPaths, context.layoutPaths.slice(1, 1 + residentPaths.length), 'resident files are a prefix of the layout');
      const pending = session.memoryStatus().paused?.pendingFiles ?? [];
      assert.deepEqual(pending, context.layoutPaths.slice(1 + residentPaths.length));
      assert.equal(pending.at(-1), 'src/a.ts', 'the edited file is reported as not in the context');
      assert.match(statuses.at(-1)!, new RegExp(`update paused: .* ${pending.length} files not in the context`));
      const saved = contextFile(storageDir, root);
      const savedAt = fs.statSync(saved).mtimeMs;
      // A further edit does not resume it, and nothing is prefilled while it is paused (nor saved again: the
      // resident part is unchanged).
      session.documentChanged(path.join(root, 'src/b.ts'), big['src/b.ts']!.replace('value1', 'renamed1'));
      await session.flushEdits();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(progressAfterPause, 0, 'no prefill step after the pause');
      assert.equal(fs.statSync(saved).mtimeMs, savedAt, 'the paused context is not written again');
      assert.ok(context.isPaused && session.memoryStatus().paused!.pendingFiles.includes('src/b.ts'));
      assert.equal(session.engine.length, context.residentTokens);
      // Questions and completions are answered over what is resident, which stays as it was.
      const resident = session.engine.length;
      const answer = await session.ask({ question: 'What is value3?', maxNewTokens: 3 });
      assert.ok(answer.stopReason === 'max-tokens' || answer.stopReason === 'stop-token');
      await session.complete({ path: path.join(root, 'src/c.ts'), prefix: 'export const x = ', suffix: '\n', multiline: false, maxNewTokens: 2 });
      // The completion's prompt stays for the next keystroke; any other request undoes it first.
      assert.equal(context.residentTokens, resident);
      await session.ask({ question: 'And value2?', maxNewTokens: 1 });
      assert.equal(session.engine.length, resident);
      // Rebuild Context resumes: a new context, prefilled whole.
      await session.rebuild();
      await session.whenResident();
      const rebuilt = session.workspaceContext!;
      assert.ok(!rebuilt.isPaused && rebuilt.isSynced);
      assert.equal(session.memoryStatus().paused, undefined);
      assert.equal(session.engine.length, rebuilt.targetTokens);
    } finally {
      await session.dispose();
    }
  });

  test('a paused context is saved as resident and restored whole on the next start', async () => {
    const root = tempDir();
    const storageDir = tempDir();
    const big: Record<string, string> = {};
    const names = ['src/a.ts', 'src/b.ts', 'src/c.ts', 'src/d.ts'];
    names.forEach((name, i) => (big[name] = `export const value${i} = ${i} + 1; // line\n`.repeat(100)));
    writeTree(root, big);
    ageInOrder(root, names);
    let pausing: Promise<boolean> | undefined;
    let cachedAtPause = 0;
    // Progress can come before open() returns: the callbacks reach the session through `opened`.
    let opened: WorkspaceSession | undefined;
    const session = opened = await WorkspaceSession.open(root, options({ storageDir }), {
      onMemoryChanged: () => undefined,
      // Paused during the first indexing, inside the first file (past the short repository header).
      onStatus: (_s, _m, p) => {
        if (opened && p && p.done > 0 && p.done < p.total && opened.workspaceContext!.residentFiles.length === 0 &&
          opened.engine.length > opened.workspaceContext!.residentTokens + 100 && !pausing) {
          cachedAtPause = opened.engine.length;
          pausing = opened.pauseSync();
        }
      },
    });
    let resident: number;
    let history: number[];
    try {
      await session.whenResident();
      assert.equal(await pausing, true);
      resident = session.workspaceContext!.residentTokens;
      assert.ok(resident > 0 && resident < cachedAtPause, `${resident} tokens resident, ${cachedAtPause} in the cache at the pause`);
      assert.equal(session.engine.length, resident);
      history = await historyOf(session);
    } finally {
      await session.dispose();
    }
    const warnings: string[] = [];
    const next = await WorkspaceSession.open(root, options({ storageDir, log: (m) => warnings.push(m) }), events);
    try {
      assert.equal(next.engine.length, resident, 'the saved resident part is taken back');
      assert.deepEqual(await historyOf(next), history);
      assert.deepEqual(warnings.filter((w) => /discarded/.test(w)), []);
      await next.whenResident();
      assert.ok(next.workspaceContext!.isSynced && !next.workspaceContext!.isPaused, 'a new start is not paused');
    } finally {
      await next.dispose();
    }
  });

  test('an untrusted workspace is never read', async () => {
    const root = tempDir();
    writeTree(root, files);
    const session = await WorkspaceSession.open(root, options({ readWorkspace: false }), events);
    try {
      await session.whenResident();
      assert.equal(session.engine.length, 0);
      assert.equal(session.memoryStatus().residentFiles.length, 0);
    } finally {
      await session.dispose();
    }
  });
});
