/**
 * The heartbeat thread of an elastic worker. Every interval it adds 1 to its own heartbeat
 * counter in the store and reads the counters of the workers it is told to watch, the launcher's
 * death count and the current generation's broken count, and posts what it saw to the main
 * thread. It runs in a worker thread so that a long synchronous step on the main thread does
 * not stop the heartbeat (only a stopped or dead process does), and so that the main thread
 * learns of a failure while it awaits a collective that would otherwise wait for its timeout.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Store, type StoreConnectOptions } from '../../index';

export interface HeartbeatSetup {
  id: string;
  intervalMs: number;
  connect: StoreConnectOptions;
}

/** What the main thread is sent each interval. */
export interface HeartbeatStatus {
  type: 'status';
  /** Per watched id: ms since its counter was last seen to change (0 when first seen). */
  ages: Record<string, number>;
  deaths: number;
  generation: number;
  broken: number;
}

export type HeartbeatCommand = { type: 'watch'; ids: string[]; generation: number } | { type: 'stop' };

if (parentPort !== null) {
  const port = parentPort;
  const setup = workerData as HeartbeatSetup;
  const store = Store.connect(setup.connect);
  let watch: string[] = [];
  let generation = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const seen = new Map<string, { value: number; at: number }>();
  let failures = 0;

  port.on('message', (m: HeartbeatCommand) => {
    if (m.type === 'watch') {
      watch = m.ids.filter((id) => id !== setup.id);
      generation = m.generation;
    } else {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      store.close();
      port.close();
    }
  });

  const tick = async (): Promise<void> => {
    const ids = watch;
    const g = generation;
    try {
      // One connection answers in order, so the requests go out together.
      const [, deaths, broken, ...values] = await Promise.all([
        store.add(`hb/${setup.id}`, 1),
        store.add('deaths', 0),
        g > 0 ? store.add(`broken/${g}`, 0) : Promise.resolve(0),
        ...ids.map((id) => store.add(`hb/${id}`, 0)),
      ]);
      // Judged after reading: a process resumed from SIGSTOP sees fresh values before it judges.
      const now = Date.now();
      const ages: Record<string, number> = {};
      ids.forEach((id, i) => {
        const s = seen.get(id);
        if (s === undefined || s.value !== values[i]) seen.set(id, { value: values[i], at: now });
        ages[id] = now - seen.get(id)!.at;
      });
      failures = 0;
      if (!stopped) port.postMessage({ type: 'status', ages, deaths, generation: g, broken } satisfies HeartbeatStatus);
    } catch (err) {
      // The store is the launcher's: if it is gone, so is the job; say so once in a while.
      if (++failures % 50 === 1 && !stopped) port.postMessage({ type: 'error', message: (err as Error).message });
    }
    if (!stopped) timer = setTimeout(() => void tick(), setup.intervalMs);
  };
  void tick();
}
