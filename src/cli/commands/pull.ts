// cskv-code pull TARGET [--revision REV] [--dir DIR] [--parallel N] [--json]: downloads a model (see
// runtime/download/pull.ts for what TARGET may be), N files at once. Progress goes to stderr (one rewritten line on
// a terminal, a line every few seconds otherwise); the model's path, what --model takes, is the one line on stdout. --json prints the PullEvents, one
// JSON object a line, on stdout instead. Ctrl-C stops the download and keeps the partial file for the next run.
import { parseArgs } from 'node:util';
import { DownloadError } from '../../runtime/errors';
import { pull } from '../../runtime/download/pull';
import { formatBytes } from '../../shared/formatBytes';
import type { PullEvent } from '../../shared/pullEvents';
import { type CommandIO, UsageError, optionalInt } from './shared';

/** Exit status of a pull stopped by the user (128 + SIGINT, as shells report it). */
const CANCELLED_EXIT = 130;

export async function pullCommand(argv: string[], { out, err }: CommandIO): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, revision: { type: 'string' }, dir: { type: 'string' }, parallel: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError('pull takes one model: ORG/NAME, ORG/NAME:FILE, ORG/NAME:QUANT or a URL');
  const parallel = optionalInt(v.parallel, '--parallel');
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const show = v.json ? (e: PullEvent): void => void out.write(`${JSON.stringify(e)}\n`) : progressPrinter(err);
  try {
    const modelPath = await pull(positionals[0]!, { revision: v.revision, dir: v.dir, parallel, signal: abort.signal, onEvent: show });
    if (!v.json) out.write(`${modelPath}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof DownloadError)) throw e;
    if (v.json) show({ event: 'error', kind: e.kind, message: e.message, partial: e.partial });
    else err.write(`\ncskv-code: ${e.message}\n`);
    return e.kind === 'cancelled' ? CANCELLED_EXIT : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Human progress: "file  312.4 MB / 1.6 GB  19%  12.3 MB/s  ETA 1m45s" for one file; for several, which arrive
 * side by side, the whole pull: "1/4 files  2.1 GB / 15.2 GB  13%  ...".
 */
function progressPrinter(err: NodeJS.WritableStream): (e: PullEvent) => void {
  const tty = (err as NodeJS.WriteStream).isTTY === true;
  let lastLine = 0;
  let open = false;
  let fetching = 0;
  let filesDone = 0;
  const line = (text: string, final: boolean): void => {
    if (tty) {
      err.write(`\r${text}\x1b[K${final ? '\n' : ''}`);
      open = !final;
    } else if (final || Date.now() - lastLine >= 3000) {
      err.write(`${text}\n`);
      lastLine = Date.now();
    }
  };
  const endLine = (): void => {
    if (open) err.write('\n');
    open = false;
  };
  return (e) => {
    switch (e.event) {
      case 'plan': {
        fetching = e.files.filter((f) => !f.cached).length;
        err.write(`${e.source} -> ${e.destination}\n`);
        err.write(fetching === 0 ? 'everything is already here\n'
          : `${fetching} file${fetching === 1 ? '' : 's'} to fetch${e.totalBytes !== undefined ? `, ${formatBytes(e.totalBytes)}` : ''}${e.files.length > fetching ? ` (${e.files.length - fetching} already here)` : ''}\n`);
        break;
      }
      case 'start':
        if (e.resumeFrom > 0) err.write(`${e.file}: resuming at ${formatBytes(e.resumeFrom)}\n`);
        break;
      case 'progress': {
        const [what, bytes, total] = fetching > 1 ? [`${filesDone}/${fetching} files`, e.overallBytes, e.overallTotal] : [e.file, e.bytes, e.total];
        const of = total !== undefined ? ` / ${formatBytes(total)}  ${Math.floor((100 * bytes) / Math.max(1, total))}%` : '';
        const eta = e.etaSeconds !== undefined ? `  ETA ${duration(e.etaSeconds)}` : '';
        const rate = e.bytesPerSecond > 0 ? `  ${formatBytes(e.bytesPerSecond)}/s` : '';
        line(`${what}  ${formatBytes(bytes)}${of}${rate}${eta}`, false);
        break;
      }
      case 'retry':
        endLine();
        err.write(`${e.file}: ${e.reason}; retrying (${e.attempt}) from ${formatBytes(e.resumeFrom)}\n`);
        break;
      case 'file-done':
        filesDone++;
        endLine();
        err.write(`${e.file}: done (${e.verified === 'nothing' ? 'not verified: the server gave no size or hash' : `${e.verified} verified`})\n`);
        break;
      case 'done':
      case 'error':
        endLine();
        break;
    }
  };
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
