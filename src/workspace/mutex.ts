// A first-come, first-served async lock: one engine serves the background prefill and every request, and each
// holds it only for one step, so a question waits at most for one prefill step.

export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.then(() => undefined, () => undefined);
    return result;
  }
}
