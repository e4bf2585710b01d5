// cskv-code ask: the main job from the command line. Puts the workspace in the model's cache (or takes it back
// from the saved context), streams the answer to a question, then says what was resident and what the KV cache
// holds against a full fp16 cache.
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_RELATIVE, defaultModelDir } from '../../shared/defaultModel';
import { WorkspaceSession } from '../../workspace/session';
import { formatBytes } from '../../shared/formatBytes';
import { type CommandIO, UsageError, optionalBits, optionalInt, parseBackend, weightFormat } from './shared';

/** The flags `cskv-code ask` takes (its usage line in cli.ts names each). */
export const ASK_OPTIONS = {
  workspace: { type: 'string', default: '.' },
  model: { type: 'string' },
  backend: { type: 'string' },
  cskv: { type: 'string', default: 'auto' },
  window: { type: 'string' },
  bits: { type: 'string' },
  weights: { type: 'string' },
  budget: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'no-save': { type: 'boolean' },
  verbose: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export async function askCommand(argv: string[], { out, err }: CommandIO): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: ASK_OPTIONS,
  });
  const question = positionals.join(' ').trim();
  if (!question) throw new UsageError('ask needs a question, e.g. cskv-code ask --workspace . --model DIR "where is the cache truncated?"');
  const model = v.model ?? defaultModelDir();
  if (!model) {
    throw new UsageError(`--model DIR is required: the default model (${DEFAULT_MODEL_RELATIVE} of this package, the project's own code model) is not installed; training/README.md says how it is made`);
  }
  const bits = optionalBits(v.bits);
  const root = path.resolve(v.workspace);
  let lastProgress = 0;
  const session = await WorkspaceSession.open(root, {
    modelDir: model,
    backend: parseBackend(v.backend),
    cskv: v.cskv,
    window: optionalInt(v.window, '--window'),
    bits,
    weights: weightFormat(v.weights),
    budgetTokens: optionalInt(v.budget, '--budget') ?? 1_000_000,
    storageDir: v['no-save'] ? undefined : defaultStorageDir(),
    readWorkspace: true,
    focus: question,
    log: (m) => err.write(`cskv-code: ${m}\n`),
  }, {
    onStatus: (state, message, progress) => {
      const now = Date.now();
      if (state === 'indexing' && progress && now - lastProgress > 1000) {
        lastProgress = now;
        err.write(`prefilling ${progress.done}/${progress.total} tokens, ${progress.tokensPerSecond.toFixed(0)} tok/s, ${progress.etaSeconds.toFixed(0)} s left\n`);
      } else if (state === 'loading-model') {
        err.write(`${message}\n`);
      }
    },
    onMemoryChanged: () => undefined,
  });
  try {
    const started = performance.now();
    await session.whenResident();
    const prefillSeconds = (performance.now() - started) / 1000;
    const abort = new AbortController();
    const onSignal = (): void => abort.abort();
    process.once('SIGINT', onSignal);
    let answer;
    try {
      answer = await session.ask({
        question,
        signal: abort.signal,
        maxNewTokens: optionalInt(v['max-new-tokens'], '--max-new-tokens') ?? 512,
        onText: v.json ? undefined : (t) => out.write(t),
      });
    } finally {
      process.removeListener('SIGINT', onSignal);
    }
    const status = session.memoryStatus();
    if (v.json) {
      out.write(`${JSON.stringify({ answer: answer.text, stopReason: answer.stopReason, residentTokens: status.residentTokens, residentFiles: status.residentFiles, excludedFiles: status.excludedFiles, memory: status.kv, backend: status.backend, backendReason: status.backendReason, adapter: status.adapter })}\n`);
    } else {
      const kv = status.kv;
      out.write(`\n\n— ${status.residentFiles.length} files, ${status.residentTokens} tokens resident (prefill ${prefillSeconds.toFixed(1)} s); ` +
        `${status.excludedFiles.length} left out` +
        `\n— KV cache ${formatBytes(kv.totalBytes)} (${formatBytes(kv.fullBytes)} full-precision window, ${formatBytes(kv.compressedBytes)} compressed) ` +
        `against ${formatBytes(kv.fp16Bytes)} for a full fp16 cache: ${(kv.savings * 100).toFixed(1)}% saved` +
        `\n— backend ${status.backendReason}\n`);
      if (v.verbose) {
        for (const f of status.residentFiles) out.write(`  resident  ${f.path} (${f.tokens} tokens)\n`);
        for (const f of status.excludedFiles) out.write(`  left out  ${f.path} (${f.reason})\n`);
      }
    }
    return answer.stopReason === 'cancelled' ? 130 : 0;
  } finally {
    await session.dispose();
  }
}

/** Saved workspace contexts live in the user's cache directory. */
function defaultStorageDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'cskv-code', 'contexts');
}
