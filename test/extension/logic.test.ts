// The extension's pure logic, without VS Code: status bar text, restart backoff, completion debounce and the
// per-language switch, and file references in answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MemoryStatus } from '../../src/protocol';
import { candidatePaths, findProsePath, parseFileReference, prosePathAtStart, resolveFileReference } from '../../src/extension/answerLinks';
import { completionsEnabledFor, delay, toggleLanguage } from '../../src/extension/completionPolicy';
import { compressMarkdown, compressSummary, parseCompressResult } from '../../src/extension/compressReport';
import {
  TOOLTIP_COMMANDS, backendLabel, formatDuration, formatSavings, gpuDeviceSummary, gpuEngineBytes, gpuEngineParts, isPaused, isUpdate, kvSummary, noGpuMemoryReason,
  pausedSummary, plural, stateSentence, statusText, statusTooltip,
} from '../../src/extension/format';
import { formatBytes } from '../../src/shared/formatBytes';
import { RestartPolicy } from '../../src/extension/restartPolicy';

const GB = 1024 ** 3;
const MB = 1024 ** 2;

function memory(totalBytes: number, fp16Bytes: number, extra: Partial<MemoryStatus> = {}): MemoryStatus {
  return {
    backend: 'onnx', backendReason: 'onnx (CPU): CUDA unavailable: libcuda.so.1: cannot open | shared object\nfile', model: '/m', residentTokens: 48_640, residentFiles: [{ path: 'a.ts', tokens: 48_640 }], excludedFiles: [],
    kv: {
      tokens: 49_152, fullTokens: 512, compressedTokens: 48_640, fullBytes: 0.1 * GB, compressedBytes: totalBytes - 0.1 * GB, totalBytes, fp16Bytes,
      savings: 1 - totalBytes / fp16Bytes, perLayer: [], fullDtype: 'f32', bits: 4, window: 32,
    },
    ...extra,
  };
}

test('status bar: KV 1.4 GB · −82% when ready, the state in words otherwise', () => {
  const m = memory(1.4 * GB, 1.4 * GB / 0.18);
  assert.equal(kvSummary(m), 'KV 1.4 GB · \u221282%');
  assert.equal(statusText({ state: 'ready', message: '', memory: m, trusted: true }), '$(database) KV 1.4 GB · \u221282%');
  assert.equal(statusText({ state: 'starting', message: '', trusted: true }), '$(loading~spin) cskv: starting');
  assert.equal(statusText({ state: 'loading-model', message: '', trusted: true }), '$(loading~spin) cskv: loading model');
  assert.equal(statusText({ state: 'indexing', message: '', progress: { done: 450, total: 1000, tokensPerSecond: 90, etaSeconds: 6 }, trusted: true }),
    '$(loading~spin) cskv: indexing 45%');
  assert.equal(statusText({ state: 'failed', message: 'x', trusted: true }), '$(error) cskv: failed');
  assert.equal(statusText({ state: 'stopped', message: '', trusted: true }), '$(debug-stop) cskv: stopped');
  assert.equal(statusText({ state: 'no-model', message: '', trusted: true }), '$(circle-slash) cskv: no model');
  assert.equal(statusText({ state: 'ready', message: '', memory: m, trusted: false }), '$(database) KV 1.4 GB · \u221282% $(workspace-untrusted)');
  // An uncompressed f32 cache is larger than fp16: said as it is.
  assert.equal(kvSummary(memory(2 * GB, 1 * GB)), 'KV 2.0 GB · +100%');
  assert.equal(kvSummary({ ...m, kv: { ...m.kv, tokens: 0, totalBytes: 0 } }), 'KV 0 B');
});

test('status bar tooltip: the split, tokens, backend and GPU', () => {
  const cpu = statusTooltip({ state: 'ready', message: 'ready', memory: memory(1.4 * GB, 7.8 * GB), trusted: true });
  assert.match(cpu, /\| KV cache \| 1\.4 GB \(−82% vs 7\.8 GB fp16\) \|/);
  assert.match(cpu, /\| Recent tokens, full precision \| 102\.4 MB · 512 tokens \(32-bit float; the last 32 tokens stay uncompressed\) \|/);
  assert.match(cpu, /\| Older tokens, compressed \| 1\.3 GB · 48,640 tokens \(4-bit\) \|/);
  assert.match(cpu, /\| Workspace resident \| 48,640 tokens in 1 file \|/);
  assert.match(cpu, /ready: 48,640 tokens of the workspace resident in 1 file/);
  assert.ok(cpu.includes('| Backend | onnx (CPU): CUDA unavailable: libcuda.so.1: cannot open \\| shared object file |'), 'the reason, escaped for the table');
  assert.match(cpu, /\| GPU memory \| — \(not on a GPU\) \|/);
  assert.doesNotMatch(cpu, /This model on the GPU/);
  const gpu = statusTooltip({ state: 'ready', message: '', memory: memory(GB, 2 * GB, { backend: 'cuda', gpu: { totalBytes: 80 * GB, usedBytes: 20 * GB, freeBytes: 60 * GB } }), trusted: true });
  assert.match(gpu, /\| GPU memory \| 20\.0 GB used of 80\.0 GB \(60\.0 GB free\) \|/);
  assert.doesNotMatch(gpu, /This model on the GPU/, 'no share line where the engine does not say');
  const lavapipe = statusTooltip({ state: 'ready', message: '', trusted: true, memory: memory(GB, 2 * GB, {
    backend: 'webgpu', backendReason: 'webgpu (Vulkan, llvmpipe: Mesa 25.0.7), as configured',
    adapter: { name: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)', vendor: 'mesa', software: true, memory: { bytes: 24 * GB, shared: true } },
  }) });
  assert.match(lavapipe, /\| GPU adapter \| llvmpipe: Mesa 25\.0\.7 \(LLVM 15\.0\.6\) \(mesa, software, shares 24\.0 GB of system memory\) \|/);
  assert.doesNotMatch(lavapipe, /GPU memory/);
  const radeon = statusTooltip({ state: 'ready', message: '', trusted: true, memory: memory(GB, 2 * GB, {
    backend: 'webgpu', backendReason: 'webgpu', adapter: { name: 'AMD Radeon RX 7900 XTX', vendor: 'amd', software: false, memory: { bytes: 24 * GB, shared: false } },
  }) });
  assert.match(radeon, /\| GPU adapter \| AMD Radeon RX 7900 XTX \(amd, 24\.0 GB\) \|/);
  assert.doesNotMatch(radeon, /This model on the GPU/);
  const held = statusTooltip({ state: 'ready', message: '', trusted: true, memory: memory(GB, 2 * GB, {
    backend: 'webgpu', backendReason: 'webgpu', adapter: { name: 'AMD Radeon RX 7900 XTX', vendor: 'amd', software: false },
    webgpu: { weightBytes: GB, fullBytes: 4 * MB, pendingBytes: MB, compressedBytes: 31 * MB, scratchBytes: 8 * MB },
  }) });
  assert.match(held, /\| This model on the GPU \| 1\.0 GB: weights 1\.0 GB, cache 36\.0 MB \(full 4\.0 MB, pending features 1\.0 MB, compressed 31\.0 MB\), scratch ~8\.0 MB \(estimated\) \|/);
  assert.match(cpu, /\| GPU memory \| — \(not on a GPU\) \|/);
  assert.doesNotMatch(cpu, /GPU adapter/);
  const indexing = statusTooltip({ state: 'indexing', message: '', progress: { done: 1200, total: 4000, tokensPerSecond: 300, etaSeconds: 9.3 }, trusted: false });
  assert.match(indexing, /indexing the workspace: 1,200 of 4,000 tokens, 300 tokens\/s, about 10 s left/);
  assert.match(indexing, /not trusted/);
});

test('GPU memory: the device, this model\'s share where the engine reports it, and why there is none', () => {
  const engine = { weightBytes: 15.2 * GB, cacheReservedBytes: 2 * GB, scratchBytes: 96 * 1024 ** 2 };
  const gpu = { totalBytes: 139.8 * GB, usedBytes: 18 * GB, freeBytes: 121.8 * GB, engine };
  assert.equal(gpuDeviceSummary(gpu), '18.0 GB used of 139.8 GB (121.8 GB free)');
  assert.equal(gpuEngineBytes(engine), 15.2 * GB + 2 * GB + 96 * 1024 ** 2);
  assert.equal(gpuEngineParts(engine), 'weights 15.2 GB, KV cache 2.0 GB reserved, scratch 96.0 MB');
  const tip = statusTooltip({ state: 'ready', message: '', memory: memory(GB, 2 * GB, { backend: 'cuda', backendReason: 'cuda: NVIDIA H200', gpu }), trusted: true });
  assert.match(tip, /\| GPU memory \| 18\.0 GB used of 139\.8 GB \(121\.8 GB free\) \|/);
  assert.match(tip, /\| This model on the GPU \| 17\.3 GB: weights 15\.2 GB, KV cache 2\.0 GB reserved, scratch 96\.0 MB \|/);
  assert.equal(noGpuMemoryReason('onnx'), 'not on a GPU');
  assert.equal(noGpuMemoryReason('webgpu'), 'WebGPU does not report it');
  assert.equal(noGpuMemoryReason('cuda'), 'not reported');
  const webgpu = statusTooltip({ state: 'ready', message: '', memory: memory(GB, 2 * GB, { backend: 'webgpu', backendReason: 'webgpu: lavapipe' }), trusted: true });
  assert.match(webgpu, /\| GPU memory \| — \(WebGPU does not report it\) \|/);
  assert.deepEqual((['onnx', 'webgpu', 'cuda'] as const).map(backendLabel), ['onnx (CPU)', 'webgpu (GPU)', 'cuda (GPU)']);
});

test('bytes, savings and durations', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.5 KB');
  assert.equal(formatBytes(1024 * 1024 * 1023.99), '1.0 GB');
  assert.equal(formatSavings(0.8249), '\u221282%');
  assert.equal(formatSavings(-0.5), '+50%');
  assert.equal(formatSavings(0.001), '±0%');
  assert.equal(formatDuration(9.2), '10 s');
  assert.equal(formatDuration(125), '2 min 5 s');
  assert.equal(formatDuration(Infinity), '…');
});

test('restart policy: backoff 1, 2, 4, 8, 16 s, then left stopped; old crashes are forgotten', () => {
  const p = new RestartPolicy();
  const t = 1_000_000;
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => p.crashed(t + i * 1000).delayMs), [1000, 2000, 4000, 8000, 16000]);
  assert.equal(p.crashed(t + 5000).delayMs, undefined, 'six crashes in three minutes: give up');
  assert.equal(p.crashed(t + 10 * 60_000).delayMs, 1000, 'a crash long after starts the count again');
  p.reset();
  assert.equal(p.crashed(t + 10 * 60_000 + 1).delayMs, 1000);
  const capped = new RestartPolicy(1000, 5000, 10);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => capped.crashed(i).delayMs), [1000, 2000, 4000, 5000, 5000]);
});

test('completion debounce: resolves after the wait, or at once with false when the keystroke that follows cancels it', async () => {
  let listener: (() => void) | undefined;
  const token = { isCancellationRequested: false, onCancellationRequested: (l: () => void) => ((listener = l), { dispose: () => (listener = undefined) }) };
  const started = Date.now();
  assert.equal(await delay(30, token), true);
  assert.ok(Date.now() - started >= 25);
  const waiting = delay(10_000, token);
  setTimeout(() => {
    token.isCancellationRequested = true;
    listener?.();
  }, 10);
  const cancelledAt = Date.now();
  assert.equal(await waiting, false);
  assert.ok(Date.now() - cancelledAt < 1000, 'cancellation ends the wait at once');
  assert.equal(await delay(10, token), false, 'an already cancelled request never waits');
  assert.equal(await delay(0, { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) }), true);
});

test('per-language switch', () => {
  assert.equal(completionsEnabledFor('python', true, []), true);
  assert.equal(completionsEnabledFor('python', true, ['markdown', 'python']), false);
  assert.equal(completionsEnabledFor('python', false, []), false);
  assert.deepEqual(toggleLanguage(['markdown'], 'python'), ['markdown', 'python']);
  assert.deepEqual(toggleLanguage(['markdown', 'python'], 'python'), ['markdown']);
});

test('file references in answers: code spans, links with lines, bare paths in prose', () => {
  assert.deepEqual(parseFileReference('src/cache.ts'), { path: 'src/cache.ts', line: undefined, column: undefined });
  assert.deepEqual(parseFileReference('src/cache.ts:42'), { path: 'src/cache.ts', line: 42, column: undefined });
  assert.deepEqual(parseFileReference('./a/b.py:3:7'), { path: './a/b.py', line: 3, column: 7 });
  assert.deepEqual(parseFileReference('src/cache.ts#L10-L20'), { path: 'src/cache.ts', line: 10, column: undefined });
  assert.deepEqual(parseFileReference('README.md'), { path: 'README.md', line: undefined, column: undefined });
  assert.deepEqual(parseFileReference('file:///ws/src/a%20b.ts'), undefined, 'a space is not in a path we link');
  assert.deepEqual(parseFileReference('file:///ws/src/a.ts'), { path: '/ws/src/a.ts', line: undefined, column: undefined });
  for (const notAPath of ['https://example.com/a.ts', 'command:foo.bar', 'e.g.', '1.5', 'x + y', 'foo()', 'version 2.0', 'example.com']) {
    assert.equal(parseFileReference(notAPath), undefined, notAPath);
  }
  const prose = 'The cache lives in src/runtime/cache/biBranchCache.ts:42, see also https://x.org/a/b.js and docs/a.md.';
  const at = findProsePath(prose);
  assert.equal(prose.slice(at, at + 11), 'src/runtime');
  assert.deepEqual(prosePathAtStart(prose.slice(at)), { length: 'src/runtime/cache/biBranchCache.ts:42'.length, ref: { path: 'src/runtime/cache/biBranchCache.ts', line: 42, column: undefined } });
  assert.equal(findProsePath('see https://x.org/a/b.js now'), -1, 'not inside a URL');
  assert.equal(findProsePath('no paths here, e.g. 1.5 or v2.0'), -1);
});

test('file references resolve inside the workspace only', () => {
  const roots = ['/ws/app', '/ws/lib'];
  assert.deepEqual(candidatePaths({ path: 'src/a.ts' }, roots), ['/ws/app/src/a.ts', '/ws/lib/src/a.ts']);
  assert.deepEqual(candidatePaths({ path: '../../etc/passwd' }, roots), []);
  assert.deepEqual(candidatePaths({ path: '/etc/passwd' }, roots), ['/ws/app/etc/passwd', '/ws/lib/etc/passwd'], 'a rooted path is taken as relative to the workspace');
  assert.deepEqual(candidatePaths({ path: '/ws/lib/x.ts' }, roots), ['/ws/app/ws/lib/x.ts', '/ws/lib/x.ts']);
  const exists = (p: string): boolean => p === '/ws/lib/src/a.ts';
  assert.equal(resolveFileReference({ path: './src/a.ts' }, roots, exists), '/ws/lib/src/a.ts');
  assert.equal(resolveFileReference({ path: 'src/missing.ts' }, roots, exists), undefined);
});

test('an edit while resident is a quiet update: the KV figure stays, with the files being read again', () => {
  const m = memory(1.4 * GB, 1.4 * GB / 0.18);
  const progress = { done: 3000, total: 4200, tokensPerSecond: 400, etaSeconds: 3 };
  const update = { state: 'indexing' as const, message: '', progress, memory: m, trusted: true, updating: ['src/a.py'] };
  assert.equal(statusText(update), '$(database) KV 1.4 GB · \u221282% $(sync~spin) updating 1 file');
  assert.equal(statusText({ ...update, updating: ['a', 'b'] }), '$(database) KV 1.4 GB · \u221282% $(sync~spin) updating 2 files');
  // A change from outside the editor (a checkout): no file count to give.
  assert.equal(statusText({ ...update, updating: [] }), '$(database) KV 1.4 GB · \u221282% $(sync~spin) updating');
  assert.equal(stateSentence(update), 'updating 1 file (src/a.py): 1,200 tokens left, about 3 s. Answers use what is resident meanwhile');
  // The first indexing (nothing resident yet) keeps its percentage.
  assert.equal(statusText({ ...update, updating: undefined }), '$(loading~spin) cskv: indexing 71%');
});

test('an update can be stopped from the tooltip; a stopped one says what is missing and that Rebuild Context resumes it', () => {
  const m = memory(1.4 * GB, 1.4 * GB / 0.18);
  const update = { state: 'indexing' as const, message: '', progress: { done: 3000, total: 4200, tokensPerSecond: 400, etaSeconds: 3 }, memory: m, trusted: true, updating: ['src/a.py'] };
  const updating = statusTooltip(update);
  assert.ok(updating.includes('[$(debug-stop) Stop updating](command:cskv.stopUpdating '), updating);
  assert.ok(!updating.includes('command:cskv.rebuildContext'));
  // Every command the tooltip links to is one the status bar lets it run.
  const linked = (text: string): string[] => [...text.matchAll(/\(command:([\w.]+)/g)].map((x) => x[1]!);
  for (const command of linked(updating)) assert.ok((TOOLTIP_COMMANDS as readonly string[]).includes(command), command);
  assert.ok(!statusTooltip({ state: 'ready', message: '', memory: m, trusted: true }).includes('command:'), 'no links when nothing is updating');

  const paused = { state: 'ready' as const, message: '', memory: { ...m, paused: { pendingFiles: ['src/b.py', 'src/a.py'] } }, trusted: true };
  assert.ok(isPaused(paused) && !isUpdate(paused));
  assert.equal(statusText(paused), '$(database) KV 1.4 GB · \u221282% $(debug-pause) update paused');
  assert.equal(pausedSummary(paused), 'update paused: 2 files not in the context (src/b.py, src/a.py)');
  assert.equal(stateSentence(paused), 'update paused: 2 files not in the context (src/b.py, src/a.py). Answers use the 48,640 tokens resident; Rebuild Workspace Context resumes the update');
  const pausedTip = statusTooltip(paused);
  assert.match(pausedTip, /update paused: 2 files not in the context/);
  assert.ok(pausedTip.includes('[$(refresh) Rebuild Workspace Context](command:cskv.rebuildContext '), pausedTip);
  assert.ok(!pausedTip.includes('command:cskv.stopUpdating'));
  for (const command of linked(pausedTip)) assert.ok((TOOLTIP_COMMANDS as readonly string[]).includes(command), command);
  const many = { ...paused, memory: { ...m, paused: { pendingFiles: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] } } };
  assert.equal(pausedSummary(many), 'update paused: 7 files not in the context (a, b, c, d, e, and 2 more)');
  const one = { ...paused, memory: { ...m, paused: { pendingFiles: ['a'] } } };
  assert.equal(pausedSummary(one), 'update paused: 1 file not in the context (a)');
});

test('plural forms and separators', () => {
  assert.equal(plural(1, 'token'), '1 token');
  assert.equal(plural(0, 'file'), '0 files');
  assert.equal(plural(12345, 'token'), '12,345 tokens');
});

test('compress report: the saving in a sentence and the per-layer table, from the JSON line', () => {
  const line = JSON.stringify({
    file: '/m/cskv.safetensors', density: 0.2, bits: 16, window: 32, calibrationTokens: 20480, files: 1, bytesPerToken: 130, fp16BytesPerToken: 640,
    savings: 0.796875, passes: 1,
    layers: [{ layer: 0, rK: 13, rV: 12, retainedK: 0.91, retainedV: 0.85, heldOutErrorK: 0.1234, heldOutErrorV: NaN, storedErrorK: 0, storedErrorV: 0 }],
  });
  const r = parseCompressResult(`[compress] noise\n{"not": "it"}\n${line}\n`);
  assert.ok(r);
  assert.equal(compressSummary(r), '79.7% of the KV cache saved: 130.0 bytes per token instead of 640 (16-bit, density 0.2)');
  const md = compressMarkdown(r);
  assert.match(md, /\| 0 \| 13 \| 12 \| 91\.0% \| 85\.0% \| 0\.1234 \| – \|/);
  assert.match(md, /20,480 tokens from 1 file;/);
  assert.equal(parseCompressResult('no json here\n'), undefined);
});
