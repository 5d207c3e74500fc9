/**
 * `--elastic`'s death notices: when a rank of this node fails, its launcher tells the job
 * through the rendezvous store, so that the training layer's `Elastic` drops the dead worker
 * at once instead of waiting for its heartbeat deadline.
 *
 * Two requests per failure, in this order:
 *   SET `<run id>/elastic/store/dead/<rank>.<incarnation>` = {"rank","incarnation","code","signal"}
 *   ADD `<run id>/elastic/store/deaths` += 1
 * so that a reader that sees the count grow finds every notice it counts.
 */

import { StoreConnection, StoreEndpoint, encodeRequest } from '../store/client';
import { Status } from '../store/frame';

const TAG = 'collectives-run';
// A store that cannot be reached must not hold up the restart of the rank for long.
const NOTICE_TIMEOUT_MS = 5000;

export interface DeadRank {
  rank: number;
  incarnation: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function deadKey(runId: string, rank: number, incarnation: number): string {
  return `${runId}/elastic/store/dead/${rank}.${incarnation}`;
}

export function deathsKey(runId: string): string {
  return `${runId}/elastic/store/deaths`;
}

export class DeathNotices {
  private connection: StoreConnection | null = null;

  constructor(
    private readonly endpoint: StoreEndpoint,
    private readonly runId: string,
  ) {}

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
    this.connection?.close();
    this.connection = null;
  }

  private async send(dead: DeadRank): Promise<void> {
    // Opened on the first failure and kept for the next ones; it reconnects after a close.
    this.connection ??= new StoreConnection(this.endpoint);
    const value = Buffer.from(JSON.stringify({ rank: dead.rank, incarnation: dead.incarnation, code: dead.code, signal: dead.signal }), 'utf8');
    const set = await this.connection.request(encodeRequest.set(Buffer.from(deadKey(this.runId, dead.rank, dead.incarnation), 'utf8'), value));
    if (set.status !== Status.OK) throw new Error(`SET answered ${set.message ?? `status ${set.status}`}`);
    const add = await this.connection.request(encodeRequest.add(Buffer.from(deathsKey(this.runId), 'utf8'), 1n));
    if (add.status !== Status.VALUE) throw new Error(`ADD answered ${add.message ?? `status ${add.status}`}`);
  }
}
