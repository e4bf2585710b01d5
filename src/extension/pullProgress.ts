// What the download notification says, from the events of `cskv-code pull --json`: VS Code's progress takes
// increments, so the percentage reached so far is kept here. No vscode import: tested on its own.
import { formatBytes } from '../shared/formatBytes';
import type { PullEvent } from '../shared/pullEvents';
import { formatDuration } from './format';

export interface ProgressStep {
  /** Percentage points to add to the notification's bar (VS Code sums them). */
  increment: number | undefined;
  message: string;
}

export class PullProgress {
  private reported = 0;
  private filesToFetch = 0;
  private filesDone = 0;
  /** The model's path once the pull is done. */
  modelPath: string | undefined;
  /** The pull's failure, when it failed. */
  error: Extract<PullEvent, { event: 'error' }> | undefined;

  /** The notification update an event asks for, or undefined for events that change nothing shown. */
  step(e: PullEvent): ProgressStep | undefined {
    switch (e.event) {
      case 'plan':
        this.filesToFetch = e.files.filter((f) => !f.cached).length;
        return { increment: undefined, message: this.filesToFetch === 0 ? 'already downloaded' : `${e.totalBytes !== undefined ? formatBytes(e.totalBytes) : 'size unknown'} to fetch` };
      case 'start':
        return e.resumeFrom > 0 ? { increment: undefined, message: `resuming ${e.file} at ${formatBytes(e.resumeFrom)}` } : undefined;
      case 'progress': {
        const of = e.overallTotal !== undefined ? ` of ${formatBytes(e.overallTotal)}` : '';
        const rate = e.bytesPerSecond > 0 ? ` · ${formatBytes(e.bytesPerSecond)}/s` : '';
        const eta = e.etaSeconds !== undefined ? ` · ${formatDuration(e.etaSeconds)} left` : '';
        // Several files arrive side by side: how many are complete, not which one is "current".
        const files = this.filesToFetch > 1 ? ` · ${this.filesDone}/${this.filesToFetch} files done` : '';
        let increment: number | undefined;
        if (e.overallTotal) {
          // The bar only grows (a file a server makes start over sends fewer bytes for a moment).
          const percent = Math.min(100, (100 * e.overallBytes) / e.overallTotal);
          increment = Math.max(0, percent - this.reported);
          this.reported = Math.max(this.reported, percent);
        }
        return { increment, message: `${formatBytes(e.overallBytes)}${of}${rate}${eta}${files}` };
      }
      case 'retry':
        return { increment: undefined, message: `${e.reason}; retrying from ${formatBytes(e.resumeFrom)}` };
      case 'file-done':
        this.filesDone++;
        return undefined;
      case 'done':
        this.modelPath = e.modelPath;
        return { increment: 100 - this.reported, message: 'done' };
      case 'error':
        this.error = e;
        return undefined;
    }
  }
}
