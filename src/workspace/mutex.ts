// A first-come, first-served async lock: one engine serves the background prefill and every request, and each
// holds it only for one step, so a question waits at most for one prefill step.
//
// A task may leave something in the engine for the next task of its kind (a completion's prompt, which the next
// keystroke's completion reuses up to the edit). Whoever runs next without taking it over undoes it first, so every
// other task still finds the engine as the last of them left it.

/** What a task left in the engine: `value` for the next task of the same `kind`, `undo` for anyone else. */
export interface Leftover<T> {
  readonly kind: string;
  readonly value: T;
  undo(): Promise<void>;
}

export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private leftover: Leftover<unknown> | undefined;

  /** Runs `task` alone, after undoing what the previous task left behind. */
  run<T>(task: () => Promise<T>): Promise<T> {
    return this.enqueue(async () => {
      await this.undoLeftover();
      return task();
    });
  }

  /**
   * Runs `task` alone, handing it what the previous task left if that was of the same `kind` (it is then the task's to
   * reuse, leave again or undo); anything else is undone first.
   */
  runTaking<T, L>(kind: string, task: (left: Leftover<L> | undefined) => Promise<T>): Promise<T> {
    return this.enqueue(async () => {
      if (this.leftover && this.leftover.kind !== kind) await this.undoLeftover();
      const left = this.leftover as Leftover<L> | undefined;
      this.leftover = undefined;
      return task(left);
    });
  }

  /** Called by the running task: leaves `value` for the next task of `kind`; anyone else runs `undo` first. */
  leave<L>(kind: string, value: L, undo: () => Promise<void>): void {
    this.leftover = { kind, value, undo };
  }

  private async undoLeftover(): Promise<void> {
    const left = this.leftover;
    this.leftover = undefined;
    await left?.undo();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.then(() => undefined, () => undefined);
    return result;
  }
}
