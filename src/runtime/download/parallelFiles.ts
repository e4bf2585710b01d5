// Several files of one pull at once: at most `limit` run together, the rest wait for a free slot. When one fails,
// the others are stopped (each keeps its partial file for the next run, as Ctrl-C does) and the first real
// failure is what the caller sees; a user's cancel stops them all and names every partial file kept.
import { DownloadError } from '../errors';

/** Files of one repo fetched at once (huggingface_hub's snapshot_download runs 8 workers). */
export const DEFAULT_PARALLEL_FILES = 8;

/** Runs `work(item, signal)` for every item, `limit` at a time; `signal` is aborted when the user or a sibling stops. */
export async function forEachInParallel<T>(items: readonly T[], limit: number, signal: AbortSignal | undefined, work: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`at most ${limit} files at once: it must be a positive integer`);
  const stop = new AbortController();
  const combined = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const failures: unknown[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !combined.aborted) {
      const item = items[next++]!;
      try {
        await work(item, combined);
      } catch (err) {
        failures.push(err);
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failures.length === 0) {
    if (signal?.aborted) throw new DownloadError('cancelled', 'cancelled');
    return;
  }
  const cancelled = (e: unknown): e is DownloadError => e instanceof DownloadError && e.kind === 'cancelled';
  // A sibling's failure is the cause; the others were only stopped because of it.
  const cause = failures.find((e) => !cancelled(e));
  if (cause !== undefined) throw cause;
  const kept = failures.filter(cancelled);
  if (kept.length === 1) throw kept[0];
  const partials = kept.map((e) => e.partial).filter((p): p is string => p !== undefined);
  throw new DownloadError('cancelled', `cancelled; ${partials.length} partial files kept (${partials.join(', ')}): run the same command again to resume`, partials[0]);
}
