/**
 * DiLoCo that outlives its workers: one DiLoCo per membership generation, the outer state
 * handed from each to the next.
 *
 * - An outer step that loses a worker is redone over the survivors: the average is over the
 *   workers whose inner phase it covers (each scales its pseudo-gradient by n/c, the others send
 *   zeros), and every worker applies the same bytes.
 * - A survivor that applied the outer step before the failure (an all-reduce can complete on
 *   some ranks and fail on others) is ahead: the new generation takes the state of the worker
 *   that applied the most outer steps, so θ_global stays the same bits on every live worker.
 * - A worker that joins (new, restarted, or one that was taken for gone) receives θ_global, the
 *   outer momentum and the step counters from that worker by broadcast, and starts its inner
 *   phase from θ_global. Joiners are admitted after an outer step, never into one.
 *
 * What a worker that dies mid-inner-phase had done since the last outer step is lost; so is its
 * inner optimizer's state (a joiner starts its inner optimizer afresh). Error-feedback residuals
 * start from zero in each generation, since their length depends on the number of workers.
 */
import type { Communicator } from '../../index';
import { copyBuffer } from '../buffers';
import { DiLoCo } from '../diloco/diloco';
import type { DiLoCoOptions } from '../diloco/options';
import type { DiLoCoState } from '../diloco/state';
import { argRangeError, argTypeError, TrainingError, TrainingErrorCode } from '../errors';
import type { ParameterSet } from '../params';
import { errorFeedbackLength } from '../../index';
import type { Elastic } from './membership';
import { mostAdvanced } from './source';

/** What each member says of itself when a generation shares its state. */
interface Standing {
  has: boolean;
  applied: number;
  steps: number;
  /** A round was dropped and this worker's θ_local holds the inner phase it covered. */
  dropped: boolean;
}

interface Snapshot {
  state: DiLoCoState;
  dropped: boolean;
}

export class ElasticDiLoCo {
  readonly elastic: Elastic;
  readonly params: ParameterSet;
  readonly #options: DiLoCoOptions;
  #diloco: DiLoCo | undefined;
  /** θ_local holds inner steps not yet averaged (false right after an outer step or a reset to θ_global). */
  #contributes = false;
  #freed = false;
  #contributors: readonly string[] = [];

  private constructor(elastic: Elastic, params: ParameterSet, options: DiLoCoOptions) {
    this.elastic = elastic;
    this.params = params;
    this.#options = options;
  }

  /**
   * Starts DiLoCo over the current generation: as DiLoCo.create() in the first generation; a
   * worker that joined a running job receives the outer state from the others (who are in
   * their own `step()` at that moment). Elastic DiLoCo runs the sync mode with one fragment and
   * no sync delay: the outer step is then one all-reduce at a step boundary, which is what can
   * be redone.
   */
  static async create(elastic: Elastic, params: ParameterSet, options: DiLoCoOptions): Promise<ElasticDiLoCo> {
    if (elastic === null || typeof elastic !== 'object' || typeof (elastic as Elastic).reform !== 'function') throw argTypeError('elastic', 'an Elastic (from Elastic.join())', elastic);
    const o = options ?? ({} as DiLoCoOptions);
    const limit = (name: keyof DiLoCoOptions, ok: unknown, expected: string): void => {
      const v = o[name];
      if (v !== undefined && v !== ok) throw argRangeError(`options.${name}`, `${expected} (elastic DiLoCo redoes one outer all-reduce at a step boundary)`, v);
    };
    limit('mode', 'sync', "'sync'");
    limit('fragments', 1, '1');
    limit('fragmentSyncDelay', 0, '0');
    limit('fragmentUpdateAlpha', 0, '0');
    const e = new ElasticDiLoCo(elastic, params, o);
    await e.#begin();
    return e;
  }

  get comm(): Communicator {
    return this.elastic.comm;
  }

  /** The current generation's DiLoCo. */
  get diloco(): DiLoCo {
    return this.#live('diloco');
  }

  /** Inner steps taken by the job; it can jump forward at a generation change (drive the loop by it). */
  get innerSteps(): number {
    return this.#live('innerSteps').innerSteps;
  }

  get outerSteps(): number {
    return this.#live('outerSteps').outerSteps;
  }

  get globalParams(): DiLoCo['globalParams'] {
    return this.#live('globalParams').globalParams;
  }

  /** The workers whose inner phase the last outer step averaged (ids), in rank order. */
  get lastContributors(): readonly string[] {
    return this.#contributors;
  }

  globalHash(): string {
    return this.#live('globalHash').globalHash();
  }

  /** Call after each inner optimizer step, as DiLoCo's; failures and joiners are handled inside. */
  async step(): Promise<void> {
    const d = this.#live('step');
    this.#contributes = true;
    try {
      await d.step();
    } catch (err) {
      if (!this.elastic.isFailure(err)) throw err;
      await this.#recover(err);
      return;
    }
    if (d.outerSteps > 0 && d.innerSteps % d.options.syncEvery === 0) {
      this.#contributes = false;
      this.#contributors = Object.freeze([...this.elastic.record.members]);
      this.elastic.healthy();
      try {
        if (await this.elastic.joinsPending()) {
          const mine = d.abandonRounds();
          await this.elastic.admit();
          await this.#share({ state: mine.state, dropped: false });
        }
      } catch (err) {
        if (!this.elastic.isFailure(err)) throw err;
        await this.#recover(err);
      }
    }
  }

  /** Releases the current DiLoCo's buffers; the Elastic stays the caller's to close. */
  async free(): Promise<void> {
    if (this.#freed) return;
    this.#freed = true;
    await this.#diloco?.free();
    this.#diloco = undefined;
  }

  #live(what: string): DiLoCo {
    if (this.#freed) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `ElasticDiLoCo.${what}: called after free()`);
    if (this.#diloco === undefined) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `ElasticDiLoCo.${what}: no DiLoCo is running (a recovery failed)`);
    return this.#diloco;
  }

  async #begin(): Promise<void> {
    try {
      if (this.elastic.needsState) await this.#share(null);
      else {
        this.#diloco = await DiLoCo.create(this.elastic.comm, this.params, this.#options);
        this.elastic.healthy();
      }
    } catch (err) {
      if (!this.elastic.isFailure(err)) throw err;
      await this.#recover(err);
    }
  }

  /** Forms generations until one has taken over the state (and redone the round that failed). */
  async #recover(cause: unknown): Promise<void> {
    let mine: Snapshot | null = null;
    for (;;) {
      const d = this.#diloco;
      if (d !== undefined) {
        const s = d.abandonRounds();
        mine = { state: s.state, dropped: s.dropped && this.#contributes };
      }
      await this.elastic.reform(cause);
      try {
        await this.#share(mine);
        return;
      } catch (err) {
        if (!this.elastic.isFailure(err)) throw err;
        cause = err;
      }
    }
  }

  /**
   * Run by every member of a new generation: a DiLoCo over its communicator, the state of the
   * member that applied the most outer steps (ties: the lowest rank) broadcast to all, then the
   * dropped round redone, if that member dropped one.
   */
  async #share(mine: Snapshot | null): Promise<void> {
    const comm = this.elastic.comm;
    const me: Standing = {
      has: mine !== null,
      applied: mine?.state.meta.applied[0] ?? -1,
      steps: mine?.state.meta.innerSteps ?? -1,
      dropped: mine?.dropped ?? false,
    };
    const all = await comm.allGatherObject({ ...me });
    const old = this.#diloco;
    const source = mostAdvanced(all, (a, b) => a.applied > b.applied || (a.applied === b.applied && a.steps > b.steps));
    if (source < 0) {
      // Nobody holds an outer state yet (the first generation failed while starting): start over.
      this.#diloco = await DiLoCo.create(comm, this.params, this.#options);
      await old?.free();
      this.elastic.stateReceived();
      this.elastic.healthy();
      return;
    }
    const d = await DiLoCo.create(comm, this.params, { ...this.#options, broadcastParameters: false });
    const src = all[source];
    const sent = comm.rank === source ? { meta: JSON.parse(JSON.stringify(mine!.state.meta)), contributors: [...this.#contributors] } : null;
    const got = (await comm.broadcastObject(sent as never, { root: source })) as unknown as { meta: DiLoCoState['meta']; contributors: string[] };
    this.#contributors = Object.freeze(got.contributors);
    const L = this.params.length;
    const shared = comm.rank === source ? mine!.state.shared : { global: new Float32Array(L), momentum: new Float32Array(L), delta: new Float32Array(L) };
    for (const b of [shared.global, shared.momentum]) await comm.broadcast(b, { root: source }).wait();
    const m = got.meta;
    const residuals = d.options.quantize?.errorFeedback ? [new Float32Array(errorFeedbackLength('allReduce', L, comm.size))] : [];
    d.loadState({ meta: { ...m, worldSize: comm.size, pending: [] }, shared: { ...shared, delta: new Float32Array(L) }, local: { residuals } });
    this.#diloco = d;
    await old?.free();
    this.elastic.stateReceived();
    // The workers whose θ_local holds the inner phase of the round the source dropped.
    const inRound = (s: Standing): boolean => s.dropped && s.applied === src.applied && s.steps === src.steps;
    const contributes = inRound(me);
    if (!contributes) {
      // Behind, joining, or right after an outer step: the inner phase starts from θ_global.
      copyBuffer(d.globalParams, this.params.data);
      this.#contributes = false;
    }
    if (src.dropped) {
      const ids = this.elastic.record.members;
      const who = ids.filter((_, r) => inRound(all[r]));
      await d.redo(0, contributes ? comm.size / who.length : 0);
      this.#contributors = Object.freeze(who);
      this.#contributes = false;
    }
    this.elastic.healthy();
  }
}
