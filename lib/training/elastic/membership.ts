/**
 * Membership generations over the rendezvous store (torchft's quorum, PCCL's peer churn): the
 * live workers of a job agree on who is in each generation and build a fresh communicator over
 * exactly those, because an engine's communicator has a fixed membership and is broken for good
 * by a lost peer (docs/reliability.md).
 *
 * Keys, under `<run id>/elastic/store/`:
 * - `hb/<id>`: the worker's heartbeat counter (heartbeat.ts);
 * - `dead/<id>`, `deaths`: the launcher's notice that a worker's process ended in failure;
 * - `cand/<g>/n`, `cand/<g>/<k>`: the workers that arrived at generation g's forming, in order;
 * - `claim/<g>`: the one decider of generation g is whoever adds 1 to it first;
 * - `members/<g>`: the decision (a GenerationRecord, JSON); `latest`: the newest g decided;
 * - `broken/<g>`, `why/<g>`: generation g has failed, and the first reason given;
 * - `joins`, `join/<k>`: new and restarted workers waiting to be admitted, in order.
 *
 * Ranks of a generation: the workers that go on keep their relative order, and workers that join
 * come after them in the order they asked; the first generation is ordered by launcher rank.
 */
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { CollectiveError, type Communicator, ErrorCode, init, Store } from '../../index';
import { TrainingError, TrainingErrorCode } from '../errors';
import type { HeartbeatCommand, HeartbeatSetup, HeartbeatStatus } from './heartbeat';
import { resolveElasticOptions, type ElasticOptions, type ResolvedElasticOptions } from './options';

export type GenerationKind = 'start' | 'failure' | 'join';

/** One generation as decided in the store. */
export interface GenerationRecord {
  generation: number;
  kind: GenerationKind;
  /** Worker ids in rank order. */
  members: string[];
  /** Workers of the previous generation that are not in this one. */
  lost: string[];
  /** Workers admitted by this generation (kind 'join'). */
  joined: string[];
  /** Why the previous generation ended. */
  reason: string;
  /** Join requests handled up to this generation. */
  joinsSeen: number;
  /** Set when there are fewer live workers than minWorkers: training stops. */
  stop?: string;
}

/** The codes after which a communicator is gone and a new generation is the way on. */
const RECOVERABLE = new Set(['PEER_LOST', 'TIMEOUT', 'ABORTED', 'DESTROYED']);
/** The store namespace of membership (collectives-run --elastic writes its death notices there too). */
const NAMESPACE = 'elastic';
/** How often waits on the store come up for air to check who is still alive. */
const POLL_MS = 25;

/** The launcher's rank of a worker id (`<rank>.<restart>`), for log lines. */
function slot(id: string): string {
  return id.split('.')[0];
}

function parseRecord(bytes: Uint8Array): GenerationRecord {
  return JSON.parse(Buffer.from(bytes).toString('utf8')) as GenerationRecord;
}

function isStoreTimeout(err: unknown): boolean {
  return err instanceof CollectiveError && err.code === 'TIMEOUT' && err.operation.startsWith('store.');
}

/** Whether `key` is set, without waiting for it. */
async function isSet(store: Store, key: string): Promise<boolean> {
  try {
    await store.get(key, 0);
    return true;
  } catch (err) {
    if (isStoreTimeout(err)) return false;
    throw err;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A worker's place in an elastic job. `Elastic.join()` enters the first generation (or, for a
 * worker started after it, waits to be admitted); `comm` is the current generation's
 * communicator. After a collective fails with PEER_LOST, TIMEOUT or ABORTED, `reform(err)`
 * builds the next generation over the live workers; at a step boundary `joinsPending()` and
 * `admit()` bring waiting workers in. ElasticDiLoCo and ElasticDataParallel do both.
 */
export class Elastic {
  readonly options: Readonly<ResolvedElasticOptions>;
  readonly #store: Store;
  /** For the reads the heartbeat status sets off, so they never queue behind a blocking wait. */
  readonly #probe: Store;
  readonly #worker: Worker;
  #status: HeartbeatStatus | undefined;
  #record: GenerationRecord | undefined;
  #comm: Communicator | undefined;
  #failureAt: number | undefined;
  #closed = false;
  #admittedAsJoiner = false;
  /** Who is told of each heartbeat report (the current generation's watch for a lost member). */
  readonly #listeners = new Set<(s: HeartbeatStatus) => void>();
  /** Ends the current generation's watch. */
  #unwatch: () => void = () => {};
  /**
   * Recovery times in ms: from each failed call this worker met (the start of `reform()`) to its
   * next successful collective (`healthy()`).
   */
  readonly recoveries: number[] = [];

  private constructor(o: ResolvedElasticOptions) {
    this.options = Object.freeze({ ...o });
    const connect = { namespace: NAMESPACE, timeoutMs: o.timeoutMs };
    this.#store = Store.connect(connect);
    this.#probe = Store.connect(connect);
    const setup: HeartbeatSetup = { id: o.id, intervalMs: o.heartbeatMs, connect };
    this.#worker = new Worker(path.join(__dirname, 'heartbeat.js'), { workerData: setup });
    this.#worker.unref();
    this.#worker.on('message', (m: HeartbeatStatus | { type: 'error'; message: string }) => {
      if (m.type === 'status') this.#onStatus(m);
    });
    this.#worker.on('error', () => {});
  }

  /**
   * Joins the job: a worker started with the others forms the first generation with them; a
   * new or restarted one asks to join and waits until the running workers admit it (at their
   * next step boundary). Needs a store that outlives every worker: collectives-run's
   * (`--elastic`), which says so with COLLECTIVES_STORE_HOSTED=1.
   */
  static async join(options?: ElasticOptions): Promise<Elastic> {
    const o = resolveElasticOptions(options, process.env);
    if (process.env.COLLECTIVES_STORE_HOSTED !== '1') {
      throw new TrainingError(
        TrainingErrorCode.ELASTIC_UNAVAILABLE,
        'Elastic.join: elastic training needs a rendezvous store that outlives every worker; start the job with collectives-run --elastic (a store hosted by rank 0 would die with it)',
      );
    }
    const e = new Elastic(o);
    try {
      await e.#start();
    } catch (err) {
      await e.close();
      throw err;
    }
    return e;
  }

  /** The current generation's communicator. */
  get comm(): Communicator {
    if (this.#comm === undefined) throw new TrainingError(TrainingErrorCode.INVALID_STATE, 'Elastic.comm: no generation is formed (closed, or a reform failed)');
    return this.#comm;
  }

  get generation(): number {
    return this.#record?.generation ?? 0;
  }

  /** The current generation's record (members in rank order, who was lost or joined, why). */
  get record(): Readonly<GenerationRecord> {
    if (this.#record === undefined) throw new TrainingError(TrainingErrorCode.INVALID_STATE, 'Elastic.record: no generation is formed');
    return this.#record;
  }

  get id(): string {
    return this.options.id;
  }

  /**
   * True while this worker has joined a running job and has not yet received its state: the
   * training wrapper clears it (`stateReceived()`) once it has.
   */
  get needsState(): boolean {
    return this.#admittedAsJoiner;
  }

  stateReceived(): void {
    this.#admittedAsJoiner = false;
  }

  /** Whether `err` means the generation is gone and `reform()` is the way on. */
  isFailure(err: unknown): boolean {
    return err instanceof CollectiveError && RECOVERABLE.has(err.code);
  }

  /**
   * Call after a collective succeeded: the first one after a failure ends that failure's
   * recovery time (kept in `recoveries`).
   */
  healthy(): void {
    if (this.#failureAt === undefined) return;
    this.recoveries.push(Date.now() - this.#failureAt);
    this.#failureAt = undefined;
  }

  /**
   * After a failure: marks the generation broken (so the others stop waiting on it), drops its
   * communicator and forms the next generation over the live workers. Throws QUORUM_LOST when
   * fewer than minWorkers remain. A worker that finds itself left out (it was taken for gone)
   * asks to join again and returns once admitted (`needsState` is then true).
   */
  async reform(cause: unknown): Promise<GenerationRecord> {
    this.#failureAt ??= Date.now();
    const why = describeCause(cause);
    const g = this.generation;
    await this.#markBroken(g, why);
    this.#dropComm(`generation ${g} was abandoned: ${why}`);
    return this.#enter(g + 1, 'failure');
  }

  /**
   * A collective check, at a step boundary: whether workers are waiting to join. Rank 0 reads
   * the store and broadcasts, so every member gets the same answer.
   */
  async joinsPending(): Promise<boolean> {
    const comm = this.comm;
    const flag = new Int32Array(1);
    if (comm.rank === 0) {
      const joins = await this.#store.add('joins', 0);
      flag[0] = joins > this.record.joinsSeen ? 1 : 0;
    }
    await comm.broadcast(flag, { root: 0 }).wait();
    return flag[0] === 1;
  }

  /** After `joinsPending()` said yes, on every member: forms the next generation with the joiners. */
  async admit(): Promise<GenerationRecord> {
    const g = this.generation;
    const old = this.#comm;
    this.#unwatch();
    this.#comm = undefined;
    await old?.destroy();
    return this.#enter(g + 1, 'join');
  }

  /**
   * Ends this worker's part, on every worker at the end of training: waits at a barrier (so that
   * no worker's end looks like a failure to the others), then rank 0 marks the job finished, so
   * that a worker still waiting to be admitted stops with JOB_FINISHED instead of waiting for
   * joinTimeoutMs. Stops the heartbeat and releases the communicator.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    const comm = this.#comm;
    this.#comm = undefined;
    if (comm !== undefined && !comm.destroyed) {
      const together = await comm.barrier().wait().then(() => true, () => false);
      if (together && comm.rank === 0) await this.#store.set('finished', String(this.generation)).catch(() => undefined);
      await comm.destroy();
    }
    // A worker that ended this way is not a lost one: see #waitForAdmission.
    await this.#store.set(`left/${this.id}`, String(this.generation)).catch(() => undefined);
    this.#worker.postMessage({ type: 'stop' } satisfies HeartbeatCommand);
    this.#store.close();
    this.#probe.close();
  }

  // ---- forming generations ----

  async #start(): Promise<void> {
    const latest = await this.#latest();
    if (latest === 0) await this.#enter(1, 'start');
    else await this.#waitForAdmission();
  }

  async #latest(): Promise<number> {
    try {
      return Number(Buffer.from(await this.#store.get('latest', 0)).toString('utf8'));
    } catch (err) {
      if (isStoreTimeout(err)) return 0;
      throw err;
    }
  }

  /**
   * Takes part in forming generation `target` (or, given `known`, joins that decided one),
   * connects, and returns its record; on to the next generation if connecting fails.
   */
  async #enter(target: number, kind: GenerationKind, known?: GenerationRecord): Promise<GenerationRecord> {
    for (;;) {
      const rec = known ?? (await this.#decided(target, kind));
      known = undefined;
      if (rec.stop !== undefined) {
        throw new TrainingError(TrainingErrorCode.QUORUM_LOST, `Elastic on worker ${this.id}: generation ${rec.generation}: ${rec.stop}`);
      }
      if (!rec.members.includes(this.id)) {
        // Taken for gone (it stopped answering): it comes back as a joiner.
        return this.#waitForAdmission();
      }
      try {
        await this.#connect(rec);
        return rec;
      } catch (err) {
        if (!this.isFailure(err)) throw err;
        this.#failureAt ??= Date.now();
        await this.#markBroken(rec.generation, `${describeCause(err)} while generation ${rec.generation} connected`);
        target = rec.generation + 1;
        kind = 'failure';
      }
    }
  }

  /** Announces this worker for generation `target` and returns the decision, deciding it if it falls to this worker. */
  async #decided(target: number, kind: GenerationKind): Promise<GenerationRecord> {
    const existing = await this.#record_(target, 0);
    if (existing !== undefined) return existing;
    const k = await this.#store.add(`cand/${target}/n`, 1);
    await this.#store.set(`cand/${target}/${k}`, this.id);
    const prev = target > 1 ? await this.#record_(target - 1, this.options.timeoutMs) : undefined;
    this.#watch([...(prev?.members ?? []), ...(await this.#joiners(prev?.joinsSeen ?? 0))], target - 1);
    const deadline = Date.now() + this.options.timeoutMs;
    for (;;) {
      const rec = await this.#record_(target, POLL_MS);
      if (rec !== undefined) return rec;
      // The decider is the first candidate still alive: normally the first to arrive.
      const cands = await this.#candidates(target);
      const gone = await this.#goneSet(cands);
      const first = cands.find((id) => !gone.has(id));
      if (first === this.id) {
        const decided = await this.#decide(target, kind, prev);
        if (decided !== undefined) return decided;
      }
      if (Date.now() > deadline) {
        throw new TrainingError(TrainingErrorCode.ELASTIC_UNAVAILABLE, `Elastic on worker ${this.id}: generation ${target} was not decided within ${this.options.timeoutMs} ms`);
      }
    }
  }

  /**
   * The decider's part: waits until every expected worker has arrived or is known to be gone
   * (the launcher's death notice, or a heartbeat that stopped for deadlineMs), then writes the
   * record. Returns undefined when another worker claimed the decision first.
   */
  async #decide(target: number, kind: GenerationKind, prev: GenerationRecord | undefined): Promise<GenerationRecord | undefined> {
    const o = this.options;
    const worldSize = Number(process.env.WORLD_SIZE ?? '1');
    const joinsNow = kind === 'join' ? await this.#store.add('joins', 0) : (prev?.joinsSeen ?? 0);
    const joiners = kind === 'join' ? await this.#joiners(prev?.joinsSeen ?? 0, joinsNow) : [];
    const expected = kind === 'start' ? [] : (prev?.members ?? []);
    this.#watch([...expected, ...joiners], target - 1);
    const until = Date.now() + o.timeoutMs;
    let cands: string[] = [];
    let gone = new Set<string>();
    for (;;) {
      cands = await this.#candidates(target);
      gone = await this.#goneSet([...expected, ...joiners, ...cands]);
      const waiting = kind === 'start' ? cands.filter((id) => !gone.has(id)).length < worldSize : expected.some((id) => !cands.includes(id) && !gone.has(id));
      if (!waiting || Date.now() > until) break;
      await delay(POLL_MS);
    }
    if ((await this.#store.add(`claim/${target}`, 1)) !== 1) return undefined;
    const live = cands.filter((id) => !gone.has(id));
    let members: string[];
    if (kind === 'start') {
      members = [...live].sort((a, b) => Number(slot(a)) - Number(slot(b)) || a.localeCompare(b));
    } else {
      // Survivors in their old order; candidates that were not members (left out earlier) wait to join.
      members = expected.filter((id) => live.includes(id));
      for (const id of joiners) if (!gone.has(id) && !members.includes(id)) members.push(id);
    }
    const lost = expected.filter((id) => !members.includes(id));
    const reason = kind === 'join' ? 'join' : kind === 'start' ? 'start' : await this.#why(target - 1);
    const rec: GenerationRecord = {
      generation: target,
      kind,
      members,
      lost,
      joined: joiners.filter((id) => members.includes(id)),
      reason,
      joinsSeen: joinsNow,
    };
    if (members.length < o.minWorkers) rec.stop = `${members.length} live worker${members.length === 1 ? '' : 's'} (${members.join(', ') || 'none'}), fewer than minWorkers ${o.minWorkers}`;
    await this.#store.set(`members/${target}`, JSON.stringify(rec));
    await this.#store.set('latest', String(target));
    return rec;
  }

  /**
   * A worker that was not in the first generation, or was left out: asks to join, waits for a
   * generation that admits it, and enters it (`needsState` is then true until its state came).
   */
  async #waitForAdmission(): Promise<GenerationRecord> {
    const ask = async (): Promise<number> => {
      const k = await this.#store.add('joins', 1);
      await this.#store.set(`join/${k}`, this.id);
      return k;
    };
    let ticket = await ask();
    const until = Date.now() + this.options.joinTimeoutMs;
    for (let g = (await this.#latest()) + 1; ; ) {
      const rec = await this.#record_(g, 250);
      if (rec !== undefined) {
        if (rec.stop === undefined && rec.members.includes(this.id)) {
          this.#admittedAsJoiner = true;
          return this.#enter(g, rec.kind, rec);
        }
        // Passed over (taken for gone while it was starting): ask again.
        if (rec.stop === undefined && rec.joinsSeen >= ticket) ticket = await ask();
        g++;
        continue;
      }
      // Only the members of the newest generation can admit anyone: when all are gone, so is
      // the training state (resume from a checkpoint).
      const newest = await this.#record_(g - 1, 0);
      if (newest !== undefined) {
        this.#watch(newest.members, 0);
        const gone = await this.#goneSet(newest.members);
        if (newest.members.every((id) => gone.has(id))) {
          // Some ended by close(): the job reached its end (the barrier that marks it finished
          // can fail when a worker dies at the very end).
          const left = await Promise.all(newest.members.map((id) => isSet(this.#store, `left/${id}`)));
          if (left.some((x) => x)) {
            throw new TrainingError(TrainingErrorCode.JOB_FINISHED, `Elastic on worker ${this.id}: the job finished before this worker was admitted`);
          }
          throw new TrainingError(
            TrainingErrorCode.QUORUM_LOST,
            `Elastic on worker ${this.id}: every worker that held the training state is gone (generation ${newest.generation}: ${newest.members.join(', ')}); nobody is left to admit this one: resume from a checkpoint`,
          );
        }
      }
      if (await this.#finished()) {
        throw new TrainingError(TrainingErrorCode.JOB_FINISHED, `Elastic on worker ${this.id}: the job finished before this worker was admitted`);
      }
      if (Date.now() > until) {
        throw new TrainingError(TrainingErrorCode.ELASTIC_UNAVAILABLE, `Elastic on worker ${this.id}: not admitted within ${this.options.joinTimeoutMs} ms (joinTimeoutMs)`);
      }
    }
  }

  /**
   * Builds the generation's communicator. An engine's rendezvous cannot be cut short, and would
   * wait its whole timeout for a member that died meanwhile; so it is raced against what the
   * heartbeat thread sees (a member's death notice or stopped heartbeat, or the generation marked
   * broken by another member); the loser is given up through init()'s signal, which closes a
   * communicator that connects after all and does not keep the process alive meanwhile.
   */
  async #connect(rec: GenerationRecord): Promise<void> {
    const rank = rec.members.indexOf(this.id);
    this.#unwatch();
    this.#watch(rec.members, rec.generation);
    const giveUp = new AbortController();
    const joining = init({ rank, worldSize: rec.members.length, namespace: `elastic/g${rec.generation}`, timeoutMs: this.options.timeoutMs, signal: giveUp.signal });
    // One watch for the generation's whole life: while it connects a loss fails the rendezvous,
    // afterwards it aborts the communicator.
    let connected = false;
    let fail: (err: Error) => void = () => {};
    const lost = new Promise<never>((_, reject) => (fail = reject));
    this.#unwatch = this.#watchLoss(rec, (why) => {
      if (connected) this.#abandon(why);
      else fail(new CollectiveError(ErrorCode.PEER_LOST, `init on rank ${rank}: ${why} while generation ${rec.generation} connected`, rank, 'init'));
    });
    let comm: Communicator;
    try {
      comm = await Promise.race([joining, lost]);
    } catch (err) {
      this.#unwatch();
      // init() then closes a communicator that connects after all, and lets the process exit meanwhile.
      giveUp.abort(err);
      joining.catch(() => undefined);
      throw err;
    }
    connected = true;
    this.#comm = comm;
    this.#record = rec;
    if (comm.rank === 0) this.options.log(describeGeneration(rec));
  }

  // ---- reading the store ----

  async #record_(g: number, timeoutMs: number): Promise<GenerationRecord | undefined> {
    try {
      return parseRecord(await this.#store.get(`members/${g}`, timeoutMs));
    } catch (err) {
      if (isStoreTimeout(err)) return undefined;
      throw err;
    }
  }

  async #candidates(g: number): Promise<string[]> {
    const n = await this.#store.add(`cand/${g}/n`, 0);
    const ids: string[] = [];
    // A candidate adds before it sets its id; its id follows at once.
    for (let k = 1; k <= n; k++) ids.push(Buffer.from(await this.#store.get(`cand/${g}/${k}`, this.options.timeoutMs)).toString('utf8'));
    return [...new Set(ids)];
  }

  async #joiners(from: number, to?: number): Promise<string[]> {
    const n = to ?? (await this.#store.add('joins', 0));
    const ids: string[] = [];
    for (let k = from + 1; k <= n; k++) ids.push(Buffer.from(await this.#store.get(`join/${k}`, this.options.timeoutMs)).toString('utf8'));
    return [...new Set(ids)];
  }

  /** Of `ids`: those the launcher reported dead, or whose heartbeat has not moved for deadlineMs. */
  async #goneSet(ids: string[]): Promise<Set<string>> {
    const gone = new Set<string>();
    const ages = this.#status?.ages ?? {};
    for (const id of new Set(ids)) {
      if (id === this.id) continue;
      if ((ages[id] ?? 0) >= this.options.deadlineMs || (await this.#isDead(this.#store, id))) gone.add(id);
    }
    return gone;
  }

  #isDead(store: Store, id: string): Promise<boolean> {
    return isSet(store, `dead/${id}`);
  }

  #finished(): Promise<boolean> {
    return isSet(this.#store, 'finished');
  }

  async #why(g: number): Promise<string> {
    try {
      return Buffer.from(await this.#store.get(`why/${g}`, 0)).toString('utf8');
    } catch {
      return 'a failure';
    }
  }

  async #markBroken(g: number, why: string): Promise<void> {
    if (g <= 0) return;
    // The first reason given is the one the log line names.
    if ((await this.#store.add(`whyn/${g}`, 1)) === 1) await this.#store.set(`why/${g}`, why);
    await this.#store.add(`broken/${g}`, 1);
  }

  // ---- watching the current generation ----

  #watch(ids: string[], generation: number): void {
    this.#worker.postMessage({ type: 'watch', ids: [...new Set(ids)], generation } satisfies HeartbeatCommand);
  }

  #dropComm(reason: string): void {
    this.#unwatch();
    const comm = this.#comm;
    this.#comm = undefined;
    if (comm !== undefined && !comm.destroyed) {
      comm.abort(reason);
      void comm.destroy();
    }
  }

  /** Aborts the current communicator (its pending calls reject with ABORTED) and tells the others. */
  #abandon(why: string): void {
    const comm = this.#comm;
    if (comm === undefined || comm.destroyed) return;
    const g = this.generation;
    comm.abort(why);
    void this.#markBroken(g, why).catch(() => undefined);
  }

  #onStatus(s: HeartbeatStatus): void {
    this.#status = s;
    for (const listener of this.#listeners) listener(s);
  }

  /**
   * Watches generation `rec` for a lost member, by what the heartbeat thread reports: the
   * generation given up by another member, a member whose heartbeat has stopped for deadlineMs,
   * or a member's death notice. Calls `onLoss` once, with the reason; returns what ends the watch.
   */
  #watchLoss(rec: GenerationRecord, onLoss: (why: string) => void): () => void {
    let done = false;
    const lose = (why: string): void => {
      if (done) return;
      done = true;
      onLoss(why);
    };
    const others = rec.members.filter((id) => id !== this.id);
    const lookForDead = (): void => {
      void Promise.all(others.map(async (id) => ((await this.#isDead(this.#probe, id)) ? id : undefined))).then(
        (dead) => {
          const id = dead.find((x) => x !== undefined);
          if (id !== undefined) lose(`worker ${id} died`);
        },
        () => undefined,
      );
    };
    // A member may have died between the decision and this watch.
    lookForDead();
    let deaths = this.#status?.deaths ?? 0;
    const listener = (s: HeartbeatStatus): void => {
      if (done || s.generation !== rec.generation) return;
      if (s.broken > 0) return lose(`generation ${rec.generation} was given up by another worker`);
      const stalled = others.find((id) => (s.ages[id] ?? 0) >= this.options.deadlineMs);
      if (stalled !== undefined) return lose(`worker ${stalled} stopped responding (no heartbeat for ${s.ages[stalled]} ms)`);
      if (s.deaths !== deaths) {
        deaths = s.deaths;
        lookForDead();
      }
    };
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** `PEER_LOST in allReduce`, or the error's message. */
export function describeCause(cause: unknown): string {
  if (cause instanceof CollectiveError) return `${cause.code} in ${cause.operation}`;
  if (cause instanceof Error) return cause.message;
  return String(cause);
}

/** Rank 0's line: `generation 3: workers 0,1,3 (lost 2 after PEER_LOST in allReduce)`. */
export function describeGeneration(rec: GenerationRecord): string {
  const workers = rec.members.map(slot).join(',');
  let why = '';
  if (rec.kind === 'failure') why = ` (lost ${rec.lost.map(slot).join(',') || 'none'} after ${rec.reason})`;
  else if (rec.kind === 'join') why = rec.joined.length > 0 ? ` (joined ${rec.joined.map(slot).join(',')})` : ' (joined none: the workers that asked had gone)';
  return `generation ${rec.generation}: workers ${workers}${why}`;
}
