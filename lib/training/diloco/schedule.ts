/**
 * When each fragment's round starts and when its average is applied, apart from any math
 * (torchft keeps its fragment schedule apart from the optimizer the same way).
 *
 * Inner steps are counted t = 1, 2, … (DiLoCo.step() after the t-th inner optimizer step).
 * Fragment f of P has its sync point at the steps t ≡ ⌊(f + 1)·H/P⌋ (mod H): fragments are
 * staggered by about H/P (exactly, when P divides H) and every parameter is synchronized once
 * per H steps.
 *
 * - 'sync': the pseudo-gradient is taken and its all-reduce started τ steps before the sync
 *   point (`launch`), and the average applied at it (`land`); τ = 0 is plain DiLoCo.
 * - 'eager': started at the sync point, with the outer step of an estimated average (this
 *   rank's fresh Δ for its share) applied at once; the average lands τ steps later.
 * - 'delayed': started at the sync point; its average lands at the fragment's next sync point,
 *   H steps later, just before the next round starts.
 */
import type { DiLoCoMode } from './options';

export interface ScheduleEvent {
  fragment: number;
  /** 'launch': take the pseudo-gradient, start its all-reduce. 'land': wait for it, apply the outer step. */
  kind: 'launch' | 'land';
}

export interface ScheduleOptions {
  syncEvery: number;
  fragments: number;
  fragmentSyncDelay: number;
  mode: DiLoCoMode;
}

export class FragmentSchedule {
  readonly syncEvery: number;
  readonly fragments: number;
  readonly delay: number;
  readonly mode: DiLoCoMode;
  /** ⌊H / P⌋: the fewest steps between two fragments' sync points. */
  readonly stagger: number;

  constructor(o: ScheduleOptions) {
    this.syncEvery = o.syncEvery;
    this.fragments = o.fragments;
    this.delay = o.fragmentSyncDelay;
    this.mode = o.mode;
    this.stagger = Math.floor(o.syncEvery / o.fragments);
  }

  /** The step offset (mod H) of fragment f's sync point. */
  syncOffset(fragment: number): number {
    return Math.floor(((fragment + 1) * this.syncEvery) / this.fragments) % this.syncEvery;
  }

  /**
   * What step t asks for, in the order to do it. Every rank gets the same list, so every rank
   * issues the same collectives in the same order.
   */
  eventsAt(t: number): ScheduleEvent[] {
    const events: ScheduleEvent[] = [];
    for (let f = 0; f < this.fragments; f++) {
      const sync = this.syncOffset(f);
      const at = (offset: number): boolean => mod(t - offset, this.syncEvery) === 0;
      switch (this.mode) {
        case 'sync':
          // A fragment's first sync point comes after more than τ steps (τ < ⌊H/P⌋ ≤ its offset).
          if (at(sync - this.delay) && t + this.delay >= this.firstSync(f)) events.push({ fragment: f, kind: 'launch' });
          if (at(sync) && t >= this.firstSync(f)) events.push({ fragment: f, kind: 'land' });
          break;
        case 'eager':
          if (at(sync + this.delay) && t - this.delay >= this.firstSync(f)) events.push({ fragment: f, kind: 'land' });
          if (at(sync) && t >= this.firstSync(f)) events.push({ fragment: f, kind: 'launch' });
          break;
        case 'delayed':
          if (at(sync) && t >= this.firstSync(f)) {
            if (t - this.syncEvery >= this.firstSync(f)) events.push({ fragment: f, kind: 'land' });
            events.push({ fragment: f, kind: 'launch' });
          }
          break;
      }
    }
    return events;
  }

  /** The first step at which fragment f syncs (its offset, or H for the last fragment). */
  firstSync(fragment: number): number {
    return this.syncOffset(fragment) || this.syncEvery;
  }
}

function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}
