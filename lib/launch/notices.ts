/**
 * `--elastic`'s death notices: when a rank of this node fails, its launcher tells the job
 * through the rendezvous store, so that the training layer's `Elastic` drops the dead worker
 * at once instead of waiting for its heartbeat deadline.
 *
 * Two requests per failure, under the job's `elastic` namespace (`<run id>/elastic/store/`), in
 * this order, so that a reader that sees the count grow finds every notice it counts:
 *   SET `dead/<rank>.<incarnation>` = {"rank","incarnation","code","signal"}
 *   ADD `deaths` += 1
 */

import { Store } from '../core/store';
import type { StoreEndpoint } from '../store/client';

const TAG = 'collectives-run';
// A store that cannot be reached must not hold up the restart of the rank for long.
const NOTICE_TIMEOUT_MS = 5000;

export interface DeadRank {
  rank: number;
  incarnation: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class DeathNotices {
  private readonly store: Store;

  constructor(
    private readonly endpoint: StoreEndpoint,
    runId: string,
  ) {
    // Opened on the first failure and kept for the next ones; it reconnects after a close.
    this.store = Store.connect({ namespace: 'elastic', runId, masterAddr: endpoint.host, masterPort: endpoint.port, token: endpoint.token, timeoutMs: NOTICE_TIMEOUT_MS });
  }

  /**
   * Writes the notice of one failed rank. Never rejects: a store that fails or does not answer
   * in time gets one warning line on stderr, and the launcher goes on without the notice.
   */
  async write(dead: DeadRank): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${NOTICE_TIMEOUT_MS} ms`)), NOTICE_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.send(dead), timeout]);
    } catch (err) {
      process.stderr.write(
        `${TAG}: warning: could not write rank ${dead.rank}'s death notice to the store at ` +
          `${this.endpoint.host}:${this.endpoint.port} (${err instanceof Error ? err.message : String(err)}); going on without it\n`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.store.close();
  }

  private async send(dead: DeadRank): Promise<void> {
    const { rank, incarnation, code, signal } = dead;
    await this.store.set(`dead/${rank}.${incarnation}`, JSON.stringify({ rank, incarnation, code, signal }));
    await this.store.add('deaths', 1);
  }
}
