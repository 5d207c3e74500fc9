/**
 * Elastic membership's options. The defaults are torchft-like: a heartbeat every 100 ms from a
 * thread of its own (so a long synchronous step on the JavaScript thread never looks like a
 * hang), and a worker whose heartbeat has not moved for 2 s counted as gone.
 */
import { argTypeError, checkKeys, checkNumber } from '../errors';

export interface ElasticOptions {
  /** Fewer live workers than this stops training with QUORUM_LOST (COLLECTIVES_ELASTIC_MIN_WORKERS, else 1). */
  minWorkers?: number;
  /** Heartbeat interval in ms (default 100). */
  heartbeatMs?: number;
  /** A worker whose heartbeat has not advanced for this long is dropped (ms; default 2000). */
  deadlineMs?: number;
  /** Each generation's communicator: its rendezvous and its collectives' default timeout (ms; default 60000). */
  timeoutMs?: number;
  /** How long a new or restarted worker waits to be admitted (ms; default 600000). */
  joinTimeoutMs?: number;
  /** This worker's id, unique in the job (COLLECTIVES_ELASTIC_ID, else `<RANK>.<restart count>`). */
  id?: string;
  /** Where rank 0 writes its one line per generation change (default stderr); false: nowhere. */
  log?: ((line: string) => void) | false;
}

export interface ResolvedElasticOptions {
  minWorkers: number;
  heartbeatMs: number;
  deadlineMs: number;
  timeoutMs: number;
  joinTimeoutMs: number;
  id: string;
  log: (line: string) => void;
}

const KEYS = ['minWorkers', 'heartbeatMs', 'deadlineMs', 'timeoutMs', 'joinTimeoutMs', 'id', 'log'];
const ID = /^[A-Za-z0-9._-]{1,64}$/;

export function resolveElasticOptions(options: ElasticOptions | undefined, env: NodeJS.ProcessEnv): ResolvedElasticOptions {
  const o = checkKeys<ElasticOptions>('options', options, KEYS);
  const fromEnv = env.COLLECTIVES_ELASTIC_MIN_WORKERS;
  const minWorkers =
    o.minWorkers !== undefined
      ? checkNumber('options.minWorkers', o.minWorkers, 1, 1 << 20, true)
      : fromEnv !== undefined && fromEnv !== ''
        ? checkNumber('COLLECTIVES_ELASTIC_MIN_WORKERS', Number(fromEnv), 1, 1 << 20, true)
        : 1;
  const heartbeatMs = checkNumber('options.heartbeatMs', o.heartbeatMs ?? 100, 10, 60_000, true);
  const deadlineMs = checkNumber('options.deadlineMs', o.deadlineMs ?? 2000, 2 * heartbeatMs, 3_600_000, true);
  const timeoutMs = checkNumber('options.timeoutMs', o.timeoutMs ?? 60_000, 100, 0xffffffff, true);
  const joinTimeoutMs = checkNumber('options.joinTimeoutMs', o.joinTimeoutMs ?? 600_000, 100, 0xffffffff, true);
  const id = o.id ?? env.COLLECTIVES_ELASTIC_ID ?? `${env.RANK ?? '0'}.${env.COLLECTIVES_RESTART_COUNT ?? '0'}`;
  if (typeof id !== 'string' || !ID.test(id)) throw argTypeError('options.id', 'an id of 1 to 64 letters, digits and ._-', id);
  const log = o.log === false ? () => {} : o.log ?? ((line: string) => process.stderr.write(line + '\n'));
  if (typeof log !== 'function') throw argTypeError('options.log', 'a function or false', o.log);
  return { minWorkers, heartbeatMs, deadlineMs, timeoutMs, joinTimeoutMs, id, log };
}
