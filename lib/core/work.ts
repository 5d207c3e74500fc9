import { stackAtWait } from './errors';

/**
 * One in-flight operation, like torch.distributed's Work. It is returned at
 * once; the operation runs off the JavaScript thread. Await it (it is
 * thenable) or call `wait()`. A failure is reported to whoever waits; an
 * unawaited Work never raises an unhandled rejection.
 */
export class Work<T = void> implements PromiseLike<T> {
  readonly operation: string;
  #completed = false;
  #failed = false;
  readonly #promise: Promise<T>;

  constructor(operation: string, promise: Promise<T>) {
    this.operation = operation;
    this.#promise = promise.then(
      (value) => {
        this.#completed = true;
        return value;
      },
      (err: unknown) => {
        this.#completed = true;
        this.#failed = true;
        throw err;
      },
    );
    this.#promise.catch(() => {});
  }

  /**
   * Resolves when the operation has completed (with its output, if any). A failure's stack
   * shows where this wait() was awaited, or where the call was issued when call sites are
   * kept (init's `callSites`).
   */
  async wait(): Promise<T> {
    try {
      return await this.#promise;
    } catch (err) {
      throw stackAtWait(err, Work.prototype.wait);
    }
  }

  /** True once the operation has finished, successfully or not. */
  isCompleted(): boolean {
    return this.#completed;
  }

  /** True when the operation finished with an error. */
  isFailed(): boolean {
    return this.#failed;
  }

  then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.wait().then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.wait().catch(onRejected);
  }
}
