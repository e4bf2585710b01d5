// When the sidecar dies, when to start it again: exponential backoff from one second, and no more restarts after
// too many crashes in a short time (a model that crashes on load would otherwise loop for ever). Pure: no vscode.

export interface RestartDecision {
  /** Start again after this many milliseconds, or give up (undefined). */
  delayMs: number | undefined;
  /** Crashes counted in the window, this one included. */
  crashes: number;
}

export class RestartPolicy {
  private crashTimes: number[] = [];

  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 30_000,
    /** Crashes within `windowMs` after which the sidecar is left stopped. */
    private readonly maxCrashes = 5,
    private readonly windowMs = 3 * 60_000,
  ) {}

  /** Records a crash at `now` and decides. */
  crashed(now: number): RestartDecision {
    this.crashTimes = this.crashTimes.filter((t) => now - t < this.windowMs);
    this.crashTimes.push(now);
    const crashes = this.crashTimes.length;
    if (crashes > this.maxCrashes) return { delayMs: undefined, crashes };
    return { delayMs: Math.min(this.maxMs, this.baseMs * 2 ** (crashes - 1)), crashes };
  }

  /** A start the user asked for forgets the earlier crashes. */
  reset(): void {
    this.crashTimes = [];
  }
}
