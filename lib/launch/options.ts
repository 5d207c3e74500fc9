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

export function validateOptions(script: string, scriptArgs: string[], raw: RawLaunchOptions): LaunchOptions {
  if (script.length === 0) fail('<script>', 'a program or .js file to run', script);

  const nprocPerNode = integer('--nproc-per-node', raw.nprocPerNode, 1, Number.MAX_SAFE_INTEGER, 'a positive integer');
  const nnodes = integer('--nnodes', raw.nnodes, 1, Number.MAX_SAFE_INTEGER, 'a positive integer');
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
