import * as dgram from 'dgram';
import * as dns from 'dns';
import * as net from 'net';
import * as os from 'os';

import { Communicator } from './communicator';
import { type RankInfo, rankFromEnvironment } from './env';
import { fromNative } from './errors';
import { addonPath, loadAddon } from './loader';
import type { NativeCommunicator } from './addon';
import { checkInt, checkOptions, checkTimeout } from './options';
import { StoreServer } from '../store/server';
import { type GlooTuning, givenInlineBytes, resolveTuning } from './tuning';
import { CollectiveError, ErrorCode, argRangeError, argTypeError } from './errors';
import { type DebugMode, callSitesOption, debugMode } from './debug';
import { mpiStatus } from './backends';

/** torch.distributed's default for NCCL; long enough for slow first steps, short enough to surface a hang. */
export const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

export interface InitOptions {
  rank?: number;
  worldSize?: number;
  /** Address of the rendezvous store (MASTER_ADDR; default 127.0.0.1). */
  masterAddr?: string;
  /** Port of the rendezvous store (MASTER_PORT; default 29500). */
  masterPort?: number;
  /** The job's store token (COLLECTIVES_TOKEN). */
  token?: string;
  /** Meet through files in this shared folder instead of the TCP store. */
  storePath?: string;
  /** Default timeout of every collective, and of the rendezvous (ms). */
  timeoutMs?: number;
  /** Address this rank's Gloo pairs listen on (default: the one that reaches masterAddr). */
  hostname?: string;
  /** Network interface for Gloo's pairs (COLLECTIVES_SOCKET_IFNAME), instead of hostname. */
  iface?: string;
  /** How Gloo drives its pairs (see GlooTuning); the defaults are measured ones. */
  gloo?: GlooTuning;
  /**
   * 'detail' (COLLECTIVES_DEBUG=detail): before each collective the ranks
   * compare what they called and reject with MISMATCH when they differ.
   */
  debug?: DebugMode;
  /**
   * Keep each call's JavaScript stack, so that a failure shows the line that issued the call
   * (COLLECTIVES_CALL_SITES=1). It costs 3.5–5 µs a call, so it is off unless asked for or
   * `debug` is 'detail'; without it a failure shows where it was awaited with `wait()`.
   */
  callSites?: boolean;
  /**
   * The engine for host memory (COLLECTIVES_ENGINE): 'gloo' (TCP; any launcher) or 'mpi'
   * (Open MPI, opened at run time; the ranks must be started by mpirun). Default: 'mpi' when
   * the ranks were started by mpirun and libmpi is found (backends().mpi.isDefault), else
   * 'gloo'. See docs/mpi.md.
   */
  engine?: Engine;
  /**
   * Meet under this name in the store instead of the next automatic one (`world`, `world.1`,
   * …, counted per process). Ranks that were not all started together, and so have made
   * different numbers of init() calls (an elastic generation's members), agree on a name this
   * way. Letters, digits and `._-/`; each name once per store and run.
   */
  namespace?: string;
  /**
   * Gives the rendezvous up when aborted: init() rejects with ABORTED at once. An engine's
   * rendezvous cannot be cut short; it goes on in the background without keeping the process
   * alive, and a communicator it makes after all is closed.
   */
  signal?: AbortSignal;
}

/** The engines that run collectives on host memory. */
export type Engine = 'gloo' | 'mpi';
const ENGINES: readonly Engine[] = ['gloo', 'mpi'];

/** options.engine, else COLLECTIVES_ENGINE, else MPI under mpirun when libmpi loads. */
function resolveEngine(given: unknown, env: NodeJS.ProcessEnv, info: RankInfo): Engine {
  const pick = (name: string, v: unknown): Engine | undefined => {
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string' || !ENGINES.includes(v as Engine)) throw argRangeError(name, "'gloo' or 'mpi'", v);
    return v as Engine;
  };
  const chosen = pick('options.engine', given) ?? pick('COLLECTIVES_ENGINE', env.COLLECTIVES_ENGINE);
  if (chosen !== undefined) return chosen;
  return info.source === 'openmpi' && mpiStatus(env).isDefault ? 'mpi' : 'gloo';
}

const INIT_KEYS = [
  'rank',
  'worldSize',
  'masterAddr',
  'masterPort',
  'token',
  'storePath',
  'timeoutMs',
  'hostname',
  'iface',
  'gloo',
  'debug',
  'callSites',
  'engine',
  'namespace',
  'signal',
] as const;

const NAMESPACE = /^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,199}$/;

function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr === '::1' || addr.startsWith('127.');
}

/** The local address a packet to `host` would leave from. */
async function localAddressToward(host: string): Promise<string> {
  if (isLoopback(host)) return '127.0.0.1';
  const { address } = await dns.promises.lookup(host);
  if (isLoopback(address)) return '127.0.0.1';
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
    sock.on('error', () => {
      sock.close();
      resolve(address);
    });
    sock.connect(9, address, () => {
      const local = sock.address().address;
      sock.close();
      resolve(local);
    });
  });
}

/** A numeric environment variable; a value that is not a number is reported under its own name. */
function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw argTypeError(name, 'a number', v);
  return n;
}

function resolveRank(o: InitOptions): RankInfo {
  const fromEnv = rankFromEnvironment();
  if (o.rank === undefined && o.worldSize === undefined) return fromEnv;
  const worldSize = o.worldSize === undefined ? fromEnv.worldSize : checkInt('options.worldSize', o.worldSize, 1, 1 << 20);
  const rank = o.rank === undefined ? fromEnv.rank : checkInt('options.rank', o.rank, 0, worldSize - 1);
  return { ...fromEnv, rank, worldSize, source: 'options' };
}

/**
 * How many communicators init() has begun in this process on each store (by its address and
 * the job's run id) as each rank (a process may play several ranks, as tests do). Each gets a namespace of its own in that store: Gloo publishes every
 * rank's pair addresses under fixed key names, so a later init() under the same names would
 * read the addresses of a communicator that is gone. Every rank makes the same init() calls on
 * a store in the same order (torch.distributed asks the same of its process groups), so the
 * numbers agree across ranks; counting per store keeps a process's earlier communicators on
 * other stores (a world of one, another job) from shifting them.
 */
const initsBegun = new Map<string, number>();

function nextGeneration(store: string): number {
  const g = initsBegun.get(store) ?? 0;
  initsBegun.set(store, g + 1);
  return g;
}

/**
 * Stores this process hosts, by "host:port". A hosted store outlives the
 * communicator that started it: other ranks may still read it (a later
 * split, NCCL's lazy join) or already meet there for the next init() while
 * this rank is still destroying, and a later init() on the same port here
 * reuses it instead of failing to bind. It is unref'd, so it never keeps the
 * process alive.
 */
const hostedStores = new Map<string, { server: Promise<StoreServer>; token: string }>();

/** How long after `timeoutMs` init() gives up on its own, so that the native side's precise failures come first. */
const JOIN_GRACE_MS = 500;

/**
 * Settles with `join`, or with TIMEOUT once `timeoutMs` (and a grace) has passed. Each wait of
 * the rendezvous has timeoutMs on the native side, but Gloo waits up to five times its timeout
 * for a peer that published its address to connect (a peer that died or failed meanwhile), and
 * the waits follow one another. A communicator that connects after all is closed.
 */
function joinWithin(join: Promise<NativeCommunicator>, timeoutMs: number, rank: number, signal?: AbortSignal): Promise<NativeCommunicator> {
  return new Promise((resolve, reject) => {
    let late = false;
    const onAbort = (): void => {
      clearTimeout(timer);
      late = true;
      const why = signal?.reason instanceof Error ? signal.reason.message : signal?.reason !== undefined ? String(signal.reason) : 'options.signal was aborted';
      reject(new CollectiveError(ErrorCode.ABORTED, `init on rank ${rank}: the rendezvous was given up: ${why}`, rank, 'init'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      late = true;
      reject(
        new CollectiveError(
          ErrorCode.TIMEOUT,
          `init on rank ${rank}: the rendezvous did not complete within ${timeoutMs} ms (a rank that published its address never connected: it died or failed)`,
          rank,
          'init',
        ),
      );
    }, timeoutMs + JOIN_GRACE_MS);
    signal?.addEventListener('abort', onAbort, { once: true });
    join.then(
      (native) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (late) native.close();
        else resolve(native);
      },
      (err: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (!late) reject(err);
      },
    );
  });
}

/**
 * Joins the job and returns the world communicator. With no options it reads
 * the launcher's environment (collectives-run, torchrun, mpirun, srun). Rank
 * 0 hosts the rendezvous store unless collectives-run already does.
 */
export async function init(options?: InitOptions): Promise<Communicator> {
  const o = checkOptions<InitOptions>('options', options, INIT_KEYS);
  const env = process.env;
  const info = resolveRank(o);
  if (info.rank >= info.worldSize) {
    throw argRangeError('options.rank', `a rank below the world size (${info.worldSize})`, info.rank);
  }
  const timeoutMs =
    o.timeoutMs !== undefined
      ? checkTimeout('options.timeoutMs', o.timeoutMs, DEFAULT_TIMEOUT_MS)
      : checkTimeout('COLLECTIVES_TIMEOUT_MS', envNumber('COLLECTIVES_TIMEOUT_MS'), DEFAULT_TIMEOUT_MS);
  const engine = resolveEngine(o.engine, env, info);
  const masterAddr = o.masterAddr ?? env.MASTER_ADDR ?? '127.0.0.1';
  if (typeof masterAddr !== 'string' || masterAddr === '') throw argTypeError('options.masterAddr', 'a host name or address', masterAddr);
  const portGiven = o.masterPort ?? envNumber('MASTER_PORT');
  const portName = o.masterPort !== undefined ? 'options.masterPort' : 'MASTER_PORT';
  let masterPort = portGiven === undefined ? 29500 : checkInt(portName, portGiven, 0, 65535);
  let token = o.token ?? env.COLLECTIVES_TOKEN ?? '';
  if (typeof token !== 'string') throw argTypeError('options.token', 'a string', token);
  const storePath = o.storePath;
  if (storePath !== undefined && (typeof storePath !== 'string' || storePath === '')) {
    throw argTypeError('options.storePath', 'a folder path', storePath);
  }
  const iface = o.iface ?? env.COLLECTIVES_SOCKET_IFNAME;
  const namespace = o.namespace;
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw argTypeError('options.signal', 'an AbortSignal', signal);
  if (signal?.aborted) {
    throw new CollectiveError(ErrorCode.ABORTED, `init on rank ${info.rank}: options.signal was aborted before the rendezvous began`, info.rank, 'init');
  }
  if (namespace !== undefined && (typeof namespace !== 'string' || !NAMESPACE.test(namespace))) {
    throw argTypeError('options.namespace', 'a name of letters, digits and ._-/ (at most 200, not starting with /)', namespace);
  }
  // Taken before the first await, so that init()s started together are numbered in call order.
  // A world of one on a store of its own (port 0, hosted here) shares that store with no one.
  const freshStore = !storePath && env.COLLECTIVES_STORE_HOSTED !== '1' && info.worldSize === 1 && (portGiven === undefined || masterPort === 0);
  const runId = env.COLLECTIVES_RUN_ID ?? 'job';
  const generation = freshStore || namespace !== undefined ? 0 : nextGeneration(`${storePath !== undefined ? `file ${storePath}` : `${masterAddr}:${masterPort}`} ${runId} rank ${info.rank}`);
  const addrName = o.masterAddr !== undefined ? 'options.masterAddr' : env.MASTER_ADDR !== undefined ? 'MASTER_ADDR' : 'the default address';
  let hostname = o.hostname;
  if (hostname === undefined && !iface) {
    try {
      hostname = await localAddressToward(masterAddr);
    } catch (err) {
      // Node's bare "getaddrinfo ENOTFOUND x" names neither the variable nor the step.
      const e = err as NodeJS.ErrnoException;
      throw new CollectiveError(
        ErrorCode.STORE_ERROR,
        `init on rank ${info.rank}: ${addrName} ${JSON.stringify(masterAddr)}, the rendezvous store's host, ` +
          `does not resolve (${e.code ?? e.message}): set it to the host name or IP address of the node that runs rank 0`,
        info.rank,
        'init',
      );
    }
  }
  const prefix = namespace !== undefined ? `${runId}/${namespace}` : `${runId}/world${generation === 0 ? '' : `.${generation}`}`;
  const debug = debugMode(o.debug);
  const callSites = callSitesOption(o.callSites, debug);

  if (token === '' && !storePath) {
    // Ranks started by hand (mpirun, srun, a shell loop) share no secret; they
    // still meet, but any local user could too, so say so.
    token = `open:${masterAddr}:${masterPort}`;
    if (info.rank === 0 && info.worldSize > 1) {
      process.emitWarning(
        'COLLECTIVES_TOKEN is not set: the rendezvous store accepts any client that can reach it. ' +
          'collectives-run sets a random token; with other launchers, export the same COLLECTIVES_TOKEN on every rank.',
        { code: 'COLLECTIVES_NO_TOKEN' },
      );
    }
  }

  const cleanups: (() => Promise<void>)[] = [];
  if (!storePath && info.rank === 0 && env.COLLECTIVES_STORE_HOSTED !== '1') {
    if (portGiven === undefined && info.worldSize === 1) masterPort = 0;
    if (masterPort === 0 && info.worldSize > 1) {
      throw argRangeError(portName, 'a fixed port when more than one rank must find the store', 0);
    }
    const where = `${masterAddr}:${masterPort}`;
    let kept = masterPort === 0 ? undefined : hostedStores.get(where);
    if (kept && kept.token !== token) {
      hostedStores.delete(where);
      await (await kept.server.catch(() => undefined))?.close();
      kept = undefined;
    }
    if (!kept) {
      // Kept as a promise, so that init()s started together share one store.
      kept = { server: StoreServer.start({ host: masterAddr, port: masterPort, token }).then((s) => s.unref()), token };
      // A store on a port of its own (a world of one) has nobody else to serve.
      if (masterPort !== 0) hostedStores.set(where, kept);
    }
    let server: StoreServer;
    try {
      server = await kept.server;
    } catch (err) {
      if (hostedStores.get(where) === kept) hostedStores.delete(where);
      throw new CollectiveError(
        ErrorCode.STORE_ERROR,
        `init on rank 0: could not host the rendezvous store at ${where}: ${(err as Error).message}`,
        0,
        'init',
      );
    }
    if (masterPort === 0) cleanups.push(() => server.close());
    masterPort = server.port;
  } else if (!storePath && masterPort === 0) {
    throw argRangeError(portName, 'the port of the running store', 0);
  }

  // A rank that serves the store from its JavaScript thread must never block that thread in an
  // inline call: the other ranks read the store after connecting (and on later splits).
  const hostsStore = !storePath && info.rank === 0 && env.COLLECTIVES_STORE_HOSTED !== '1' && info.worldSize > 1;
  const tuning = resolveTuning(o.gloo, env, info.localWorldSize, hostsStore);
  const addon = loadAddon();
  let native;
  try {
    const join = addon.connect({
      rank: info.rank,
      size: info.worldSize,
      timeoutMs,
      prefix,
      hostname,
      iface,
      storeHost: storePath ? undefined : masterAddr,
      storePort: storePath ? undefined : masterPort,
      storePath,
      token,
      glooMode: tuning.mode,
      allReduceAlgorithm: tuning.allReduceAlgorithm,
      busyPoll: tuning.busyPoll,
      inlineBytes: tuning.inlineBytes,
      // 'auto' applies only while the communicator is alone; a given threshold, always.
      inlineAlone: givenInlineBytes(o.gloo, env) === 'auto',
      debug,
      engine,
      callerHoldsProcess: true,
    });
    native = await joinWithin(join, timeoutMs, info.rank, signal);
  } catch (err) {
    for (const c of cleanups) await c();
    throw notJoined(fromNative(err, info.rank, 'init'), info, timeoutMs, prefix);
  }
  return Communicator.create(native, timeoutMs, tuning, cleanups, callSites, {
    access: { endpoint: storePath ? null : { host: masterAddr, port: masterPort, token }, prefix },
    localRank: info.localRank,
    localSize: info.localWorldSize,
    host: hostHash(os.hostname()),
  });
}

/** A 32-bit FNV-1a hash of the host name: split() compares it to count ranks on one host. */
function hostHash(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  return h | 0;
}

/**
 * The rendezvous timing out means some ranks never published their address; the store's
 * reply (`WAIT for "job/world/1" timed out … still missing "job/world/1"`) names keys, which
 * mean nothing to the user. Say which ranks did not join instead, and keep the store's words.
 */
function notJoined(err: Error, info: RankInfo, timeoutMs: number, prefix: string): Error {
  if (!(err instanceof CollectiveError) || err.code !== ErrorCode.TIMEOUT) return err;
  const m = /still missing (.*)$/.exec(err.message);
  if (!m) return err;
  const keys = [...m[1].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((k) => k[1]);
  const ranks: number[] = [];
  for (const key of keys) {
    const r = key.startsWith(prefix + '/') ? /^(?:rank_)?([0-9]+)$/.exec(key.slice(prefix.length + 1)) : null;
    if (!r) return err;
    ranks.push(Number(r[1]));
  }
  if (ranks.length === 0) return err;
  const more = /and ([0-9]+) more$/.exec(m[1]);
  const who = ranks.length === 1 && !more ? `rank ${ranks[0]}` : `ranks ${ranks.join(', ')}${more ? ` and ${more[1]} more` : ''}`;
  const out = new CollectiveError(
    ErrorCode.TIMEOUT,
    `init on rank ${info.rank}: ${who} of ${info.worldSize} did not join within ${timeoutMs} ms ` +
      `(is every rank started, with the same WORLD_SIZE and MASTER_ADDR:MASTER_PORT? the store said: ${err.message.replace(/^init on rank [0-9]+: /, '')})`,
    info.rank,
    'init',
  );
  out.stack = `${out.name}: ${out.message}\n${(err.stack ?? '').split('\n').slice(1).join('\n')}`;
  return out;
}

/** Versions of the engines this build uses, and the addon file it loaded (a prebuild or a source build). */
export function versions(): { gloo: string; napi: number; node: string; addon: string } {
  const v = loadAddon().versions;
  return { gloo: v.gloo, napi: v.napi, node: process.version, addon: addonPath() ?? '' };
}
