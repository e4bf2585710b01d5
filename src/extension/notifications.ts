// The notifications cskv-code shows, one per state: the first indexing as a cancellable progress notification,
// a restart after a crash as a progress notification, both closed as soon as the state moves on; an error once
// per distinct failure, always with what to do next (Retry, Select Model, Open Log, Restart). VS Code cannot take
// back a message box, so transient states never use one: only errors and "running again" do.
import * as vscode from 'vscode';
import type { StatusView } from './format';
import { formatCount, progressPercent } from './format';

/** What a notification may ask the context to do. */
export interface NotificationActions {
  retry(): void;
  restart(): void;
  stop(reason: string): void;
  showLog(): void;
}

export type ErrorAction = 'Retry' | 'Select Model' | 'Open Log' | 'Restart';

export class Notifications implements vscode.Disposable {
  /** The open progress notification and what closes it. */
  private progress: { kind: 'indexing' | 'restarting'; close: () => void; report: (view: StatusView) => void } | undefined;
  /** The failure last shown, so the same one is not shown twice while it stands. */
  private shownFailure: string | undefined;

  constructor(private readonly actions: NotificationActions) {}

  /** Follows the state: opens, updates or closes the progress notification. */
  viewChanged(view: StatusView): void {
    const indexingFirstTime = view.state === 'indexing' && view.updating === undefined;
    if (this.progress?.kind === 'indexing' && indexingFirstTime) this.progress.report(view);
    else if (this.progress && !(this.progress.kind === 'restarting' && (view.state === 'starting' || view.state === 'loading-model'))) this.closeProgress();
    if (!this.progress && indexingFirstTime) this.openIndexing(view);
    if (view.state !== 'failed' && view.state !== 'stopped') this.shownFailure = undefined;
  }

  /** After a crash: a notification that says so and closes once the model is back (or given up on). */
  restarting(message: string): void {
    this.closeProgress();
    this.open('restarting', message, false);
  }

  /** The model server is back after a crash. */
  recovered(): void {
    void vscode.window.showInformationMessage('cskv-code is running again.');
  }

  /** An error with what to do next; the same failure is shown once while it stands. */
  error(message: string, actions: ErrorAction[]): void {
    if (this.shownFailure === message) return;
    this.shownFailure = message;
    void vscode.window.showErrorMessage(`cskv-code: ${message}`, ...actions).then((choice) => {
      if (this.shownFailure === message) this.shownFailure = undefined;
      switch (choice) {
        case 'Retry':
          return this.actions.retry();
        case 'Restart':
          return this.actions.restart();
        case 'Select Model':
          return void vscode.commands.executeCommand('cskv.selectModel');
        case 'Open Log':
          return this.actions.showLog();
        default:
          return undefined;
      }
    });
  }

  dispose(): void {
    this.closeProgress();
  }

  private openIndexing(view: StatusView): void {
    this.open('indexing', 'reading the workspace into the model', true);
    this.progress?.report(view);
  }

  private open(kind: 'indexing' | 'restarting', title: string, cancellable: boolean): void {
    let close!: () => void;
    const closed = new Promise<void>((resolve) => {
      close = resolve;
    });
    let last = 0;
    let reportTo: ((view: StatusView) => void) | undefined;
    const entry = {
      kind,
      close,
      report: (view: StatusView) => reportTo?.(view),
    };
    this.progress = entry;
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `cskv-code: ${title}`, cancellable },
      (progress, token) => {
        reportTo = (view) => {
          const p = view.progress;
          if (!p || p.total <= 0) return;
          const percent = progressPercent(p);
          progress.report({ increment: Math.max(0, percent - last), message: `${formatCount(p.done)} of ${formatCount(p.total)} tokens` });
          last = percent;
        };
        token.onCancellationRequested(() => {
          if (this.progress === entry) this.progress = undefined;
          close();
          this.actions.stop('indexing cancelled');
        });
        return closed;
      },
    );
  }

  private closeProgress(): void {
    const open = this.progress;
    this.progress = undefined;
    open?.close();
  }
}
