// Notices a sidecar that is alive but no longer answers (stuck on a read, in a loop, or stopped): a crash closes
// the connection and the client reports it, a hang does not. Every `intervalMs` it sends the health request; when
// one has gone unanswered for `timeoutMs` it calls `onUnresponsive` once, and the context then kills the process
// and restarts it through the crash path. Pure timing, no vscode import, so its tests run without VS Code.

export interface HealthMonitorOptions {
  /** Sends the health request; resolves when the sidecar answers. */
  ping(): Promise<unknown>;
  onUnresponsive(silentMs: number): void;
  /** Whether to send a request now (not while the model loads: a large checkpoint is converted synchronously). */
  shouldPing?: () => boolean;
  intervalMs: number;
  timeoutMs: number;
  now?: () => number;
}

export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  /** When the unanswered request was sent; undefined while none is outstanding. */
  private pendingSince: number | undefined;
  private generation = 0;

  constructor(private readonly options: HealthMonitorOptions) {}

  start(): void {
    this.stop();
    const generation = ++this.generation;
    const now = this.options.now ?? Date.now;
    this.timer = setInterval(() => {
      if (this.pendingSince !== undefined) {
        const silent = now() - this.pendingSince;
        if (silent >= this.options.timeoutMs) {
          this.stop();
          this.options.onUnresponsive(silent);
        }
        return;
      }
      if (this.options.shouldPing && !this.options.shouldPing()) return;
      this.pendingSince = now();
      this.options.ping().then(
        () => {
          if (generation === this.generation) this.pendingSince = undefined;
        },
        // A failed request means the connection is going: the client's close handler deals with that.
        () => undefined,
      );
    }, this.options.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.pendingSince = undefined;
    this.generation++;
  }
}
