/** Options of `collectives-run`, as strings from the command line and as validated values. */

/** A mistake in how the launcher was invoked; the CLI prints it and exits with status 2. */
export class UsageError extends Error {
  readonly code = 'USAGE';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Option values exactly as they came from the command line (or their defaults). */
export interface RawLaunchOptions {
  nprocPerNode: string;
  nnodes: string;
  nodeRank: string;
  masterAddr: string;
  masterPort: string;
  maxRestarts: string;
  prefix: boolean;
  graceMs: string;
  standalone?: boolean;
  module?: boolean;
  logDir?: string;
  tee?: string;
  redirects?: string;
  localRanksFilter?: string;
  elastic?: boolean;
  minWorkers?: string;
}

/** Which of a rank's streams an option covers: torchrun's numbers (0 none, 1 stdout, 2 stderr, 3 both). */
export interface StreamSet {
  stdout: boolean;
  stderr: boolean;
}

/** What the launcher knows of this machine, for `--nproc-per-node auto|cpu|gpu`. */
export interface Machine {
  cpus(): number;
  /** The number of CUDA devices, or 0 when CUDA is not usable. */
  gpus(): number;
}

export interface LaunchOptions {
  /** Program every rank runs; `.js`, `.cjs` and `.mjs` run under this Node.js binary. */
  script: string;
  scriptArgs: string[];
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  /** 0 lets the store pick a free port (single node only). */
  masterPort: number;
  maxRestarts: number;
  /** Prefix every output line of a rank with `[rank<N>]: `. */
  prefix: boolean;
  /** Time between SIGTERM and SIGKILL when ranks are stopped. */
  graceMs: number;
  /**
   * Where each rank's stdout and stderr files go (`<logDir>/<run id>/attempt_<n>/<rank>/`);
   * undefined when no stream is written to a file.
   */
  logDir?: string;
  /** Per local rank: which streams are written to files in logDir (default: none). */
  toFile?: (localRank: number) => StreamSet;
  /** Per local rank: which streams are shown on the launcher's own stdout and stderr (default: both). */
  toConsole?: (localRank: number) => StreamSet;
  /** What to start for each rank, when resolved beforehand (resolveCommand); else from `script`. */
  command?: { file: string; args: string[] };
  /**
   * `--elastic`: a failed rank is restarted alone (up to maxRestarts restarts over all of this
   * node's ranks) while the others go on, instead of the whole group being stopped.
   */
  elastic?: boolean;
  /** `--min-workers`: the fewest live ranks the training layer may go on with (elastic only). */
  minWorkers?: number;
}

export const DEFAULTS: Readonly<RawLaunchOptions> = {
  nprocPerNode: '1',
  nnodes: '1',
  nodeRank: '0',
  masterAddr: '127.0.0.1',
  masterPort: '29500',
  maxRestarts: '0',
  prefix: true,
  graceMs: '5000',
  minWorkers: '1',
};

// setTimeout treats longer delays as 1 ms, so a larger grace period would kill at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

function fail(option: string, expected: string, got: string): never {
  throw new UsageError(`${option}: expected ${expected}, got ${JSON.stringify(got)}`);
}

// Digits only: Number() would also accept "", " 2", "1e3", "0x10" and "2.0".
function integer(option: string, value: string, min: number, max: number, expected: string): number {
  if (!/^[0-9]+$/.test(value)) fail(option, expected, value);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) fail(option, expected, value);
  return n;
}

const STREAMS_EXPECTED = '0 (none), 1 (stdout), 2 (stderr), 3 (both), or per local rank as 0:3,1:2';

function streamSet(n: number): StreamSet {
  return { stdout: (n & 1) !== 0, stderr: (n & 2) !== 0 };
}

/** torchrun's `--tee` / `--redirects` values: one digit for every rank, or `localRank:digit,…`. */
function streamsOption(option: string, value: string | undefined): (localRank: number) => StreamSet {
  if (value === undefined) return () => streamSet(0);
  if (/^[0-3]$/.test(value)) {
    const all = streamSet(Number(value));
    return () => all;
  }
  const per = new Map<number, StreamSet>();
  for (const part of value.split(',')) {
    const m = /^([0-9]+):([0-3])$/.exec(part.trim());
    if (!m) fail(option, STREAMS_EXPECTED, value);
    per.set(Number(m[1]), streamSet(Number(m[2])));
  }
  return (localRank) => per.get(localRank) ?? streamSet(0);
}

/** `--local-ranks-filter 0,2`: the local ranks whose output is shown on the console. */
function ranksFilter(value: string | undefined, nprocPerNode: number): (localRank: number) => boolean {
  if (value === undefined) return () => true;
  const expected = `local ranks from 0 to ${nprocPerNode - 1}, separated by commas (e.g. 0 or 0,2)`;
  const shown = new Set<number>();
  for (const part of value.split(',')) {
    const t = part.trim();
    if (!/^[0-9]+$/.test(t) || Number(t) >= nprocPerNode) fail('--local-ranks-filter', expected, value);
    shown.add(Number(t));
  }
  return (localRank) => shown.has(localRank);
}

/** `--nproc-per-node`: a count, or torchrun's `auto` (GPUs when CUDA is usable, else CPUs), `cpu`, `gpu`. */
function nprocOption(value: string, machine: Machine): number {
  if (value === 'auto') {
    const gpus = machine.gpus();
    return gpus > 0 ? gpus : machine.cpus();
  }
  if (value === 'cpu') return machine.cpus();
  if (value === 'gpu') {
    const gpus = machine.gpus();
    if (gpus === 0) {
      throw new UsageError('--nproc-per-node: expected a machine with CUDA devices for "gpu", got none (backends().cuda is not available)');
    }
    return gpus;
  }
  return integer('--nproc-per-node', value, 1, Number.MAX_SAFE_INTEGER, 'a positive integer, auto, cpu or gpu');
}

/**
 * `--nnodes`: a node count. With --elastic, torchrun's `MIN:MAX` spelling is taken too when
 * MIN = MAX: elastic mode restarts ranks in place, it never adds or drops nodes.
 */
function nnodesOption(value: string, elastic: boolean): number {
  const range = elastic ? /^([0-9]+):([0-9]+)$/.exec(value) : null;
  if (range === null) return integer('--nnodes', value, 1, Number.MAX_SAFE_INTEGER, 'a positive integer');
  const expected = 'MIN:MAX with MIN = MAX (a node count; --elastic keeps the ranks elastic, not the nodes: see --min-workers)';
  if (range[1] !== range[2]) throw new UsageError(`--nnodes ${value}: expected ${expected}, got ${JSON.stringify(value)}`);
  return integer('--nnodes', range[1], 1, Number.MAX_SAFE_INTEGER, expected);
}

/**
 * torchrun takes both spellings of its options (`--nproc_per_node` and `--nproc-per-node`);
 * commander knows only the dashed one, so the underscore spelling of a known option is
 * rewritten before parsing, up to the script's name: what follows belongs to the script.
 */
export function normalizeArgv(argv: readonly string[], takesValue: ReadonlySet<string>, flags: ReadonlySet<string>): string[] {
  const out = argv.slice(0, 2);
  let i = 2;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--' || !a.startsWith('-') || a === '-') break;
    const eq = a.indexOf('=');
    const name = eq === -1 ? a : a.slice(0, eq);
    const dashed = name.startsWith('--') ? '--' + name.slice(2).replace(/_/g, '-') : name;
    const known = takesValue.has(dashed) || flags.has(dashed);
    out.push(known ? dashed + (eq === -1 ? '' : a.slice(eq)) : a);
    if (known && eq === -1 && takesValue.has(dashed) && i + 1 < argv.length) out.push(argv[++i]);
  }
  return out.concat(argv.slice(i));
}

export function validateOptions(
  script: string,
  scriptArgs: string[],
  raw: RawLaunchOptions,
  machine: Machine = { cpus: () => 1, gpus: () => 0 },
  given: ReadonlySet<string> = new Set(),
): LaunchOptions {
  if (script.length === 0) fail('<script>', raw.module ? 'a package name' : 'a program or .js file to run', script);

  const elastic = raw.elastic === true;
  const nprocPerNode = nprocOption(raw.nprocPerNode, machine);
  const nnodes = nnodesOption(raw.nnodes, elastic);
  if (raw.standalone) {
    if (nnodes !== 1) throw new UsageError(`--standalone: expected a single node, got --nnodes ${raw.nnodes}`);
    // The point of --standalone is that the launcher picks the address and port itself.
    for (const [key, option] of [['masterAddr', '--master-addr'], ['masterPort', '--master-port'], ['nodeRank', '--node-rank']] as const) {
      if (given.has(key)) throw new UsageError(`--standalone: expected no ${option} (the store listens on a free port of 127.0.0.1), got ${option} ${raw[key]}`);
    }
    raw = { ...raw, masterAddr: '127.0.0.1', masterPort: '0', nodeRank: '0' };
  }
  const nodeRank = integer(
    '--node-rank',
    raw.nodeRank,
    0,
    nnodes - 1,
    nnodes === 1 ? '0 (--nnodes is 1)' : `an integer from 0 to ${nnodes - 1} (--nnodes is ${nnodes})`,
  );

  const masterAddr = raw.masterAddr;
  if (masterAddr.length === 0 || /\s/.test(masterAddr)) fail('--master-addr', 'a host name or IP address', masterAddr);

  const masterPort = integer('--master-port', raw.masterPort, 0, 65535, 'a port number from 0 to 65535');
  if (masterPort === 0 && nnodes > 1) {
    throw new UsageError(
      `--master-port: 0 (pick a free port) is allowed only with --nnodes 1, got "0" with --nnodes ${nnodes}; ` +
        'every node must be given the same fixed port',
    );
  }

  const maxRestarts = integer('--max-restarts', raw.maxRestarts, 0, Number.MAX_SAFE_INTEGER, 'a non-negative integer');
  const graceMs = integer('--grace-ms', raw.graceMs, 0, MAX_TIMER_MS, `an integer from 0 to ${MAX_TIMER_MS} (milliseconds)`);

  if (given.has('minWorkers') && !elastic) {
    throw new UsageError(`--min-workers: expected --elastic with it (without it a failed rank stops the whole group), got --min-workers ${raw.minWorkers} alone`);
  }
  const ranks = nnodes * nprocPerNode;
  const minWorkers = integer(
    '--min-workers',
    raw.minWorkers ?? DEFAULTS.minWorkers!,
    1,
    ranks,
    `an integer from 1 to ${ranks} (the job's ranks: --nnodes ${nnodes} × --nproc-per-node ${nprocPerNode})`,
  );

  if (raw.logDir !== undefined && raw.logDir.length === 0) fail('--log-dir', 'a folder', raw.logDir);
  // --log-dir alone writes both streams to files and still shows them (as --tee 3 would):
  // asking for a log folder and getting an empty one would be a surprise.
  const tee = streamsOption('--tee', raw.tee ?? (raw.logDir !== undefined && raw.redirects === undefined ? '3' : undefined));
  const redirects = streamsOption('--redirects', raw.redirects);
  const shown = ranksFilter(raw.localRanksFilter, nprocPerNode);
  const toFile = (r: number): StreamSet => {
    const t = tee(r);
    const d = redirects(r);
    return { stdout: t.stdout || d.stdout, stderr: t.stderr || d.stderr };
  };
  const toConsole = (r: number): StreamSet => {
    if (!shown(r)) return { stdout: false, stderr: false };
    const t = tee(r);
    const d = redirects(r);
    return { stdout: t.stdout || !d.stdout, stderr: t.stderr || !d.stderr };
  };

  return {
    script,
    scriptArgs: [...scriptArgs],
    nprocPerNode,
    nnodes,
    nodeRank,
    masterAddr,
    masterPort,
    maxRestarts,
    prefix: raw.prefix,
    graceMs,
    logDir: raw.logDir,
    toFile,
    toConsole,
    elastic,
    minWorkers,
  };
}

/**
 * The job's store token. Nodes cannot agree on a random one, so more than one node needs
 * the same COLLECTIVES_TOKEN in every node's environment.
 */
export function resolveToken(nnodes: number, env: NodeJS.ProcessEnv, random: () => string): string {
  const token = env.COLLECTIVES_TOKEN;
  if (token !== undefined && token.length > 0) return token;
  if (nnodes > 1) {
    throw new UsageError(
      `--nnodes ${nnodes}: every node needs the same COLLECTIVES_TOKEN in its environment, ` +
        'got none (e.g. export COLLECTIVES_TOKEN=$(openssl rand -hex 32) and pass it to every node)',
    );
  }
  return random();
}
