/**
 * Per-operation counters of a communicator (Communicator.stats): calls, bytes this rank sends
 * and receives, time in flight. Bytes are the payload of the bandwidth-optimal schedule of each
 * collective (the model behind nccl-tests' bus bandwidth), computed from the call's shape when
 * it is issued: what the training layer's strategies are compared by, independent of which
 * algorithm the engine picked for the size.
 */

export interface OperationStats {
  /** Calls issued. */
  calls: number;
  /** Calls that settled with an error. */
  failures: number;
  /** Bytes this rank sends (see Communicator.stats for each collective's formula). */
  bytesSent: number;
  /** Bytes this rank receives. */
  bytesReceived: number;
  /** Sum over settled calls of the time from issue to completion, in milliseconds. */
  timeMs: number;
  /**
   * Of the calls, those that ran inline: on the calling thread, settled before the call
   * returned (docs/tuning.md#the-inline-path).
   */
  inline: number;
}

export interface CommStats {
  /** One entry per operation that was called since the last reset, by method name. */
  operations: Record<string, OperationStats>;
  /** The sums over every operation. */
  total: OperationStats;
}

/** Counters of one communicator: one entry per operation name, made on its first call. */
export class StatsCounter {
  #entries = new Map<string, OperationStats>();
  /** The addon's inline counts (since the communicator was made) at the last reset. */
  #inlineBase: Record<string, number> = {};

  /** Counts a call at issue and returns its entry, which the settle handler updates. */
  issued(operation: string, sent: number, received: number): OperationStats {
    let e = this.#entries.get(operation);
    if (e === undefined) {
      e = { calls: 0, failures: 0, bytesSent: 0, bytesReceived: 0, timeMs: 0, inline: 0 };
      this.#entries.set(operation, e);
    }
    e.calls++;
    e.bytesSent += sent;
    e.bytesReceived += received;
    return e;
  }

  /** `inlined`: the addon's inline counts by operation, since the communicator was made. */
  snapshot(inlined: Readonly<Record<string, number>> = {}): CommStats {
    const operations: Record<string, OperationStats> = {};
    const total: OperationStats = { calls: 0, failures: 0, bytesSent: 0, bytesReceived: 0, timeMs: 0, inline: 0 };
    for (const [name, e] of this.#entries) {
      const inline = (inlined[name] ?? 0) - (this.#inlineBase[name] ?? 0);
      operations[name] = { ...e, inline };
      total.inline += inline;
      total.calls += e.calls;
      total.failures += e.failures;
      total.bytesSent += e.bytesSent;
      total.bytesReceived += e.bytesReceived;
      total.timeMs += e.timeMs;
    }
    return { operations, total };
  }

  /** Starts counting from zero; calls still in flight add their time to the old entries only. */
  reset(inlined: Readonly<Record<string, number>> = {}): void {
    this.#entries = new Map();
    this.#inlineBase = { ...inlined };
  }
}
