/**
 * `collectives-run --engine mpi`: MPI's ranks must be started by MPI's own launcher (Open MPI
 * connects them through mpirun's daemons, which this supervisor is not), so the launcher hands
 * the job to `mpirun` instead of starting the ranks itself. Single node only: across nodes,
 * run mpirun with a hostfile directly (docs/mpi.md).
 */

import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';

import type { LaunchOptions } from './options';
import { UsageError } from './options';

/** A free TCP port of 127.0.0.1, for rank 0's rendezvous store. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * mpirun's arguments for `np` ranks of `command`: as root Open MPI refuses to start without
 * --allow-run-as-root, and with more ranks than cores without --oversubscribe, where it also
 * needs mpi_yield_when_idle so that waiting ranks give their core away (docs/mpi.md).
 */
export function mpirunArgs(np: number, command: { file: string; args: string[] }, cpus: number, isRoot: boolean): string[] {
  const args = ['-np', String(np)];
  if (isRoot) args.push('--allow-run-as-root');
  if (np > cpus) args.push('--oversubscribe', '--mca', 'mpi_yield_when_idle', '1');
  for (const name of ['COLLECTIVES_ENGINE', 'MASTER_ADDR', 'MASTER_PORT', 'COLLECTIVES_TOKEN']) args.push('-x', name);
  return [...args, command.file, ...command.args];
}

/** Runs the job under mpirun; resolves with its exit code. */
export async function runUnderMpirun(opts: LaunchOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (opts.nnodes !== 1) {
    throw new UsageError(`--engine mpi: expected a single node (run mpirun with a hostfile across nodes), got --nnodes ${opts.nnodes}`);
  }
  if (opts.maxRestarts !== 0) throw new UsageError(`--engine mpi: mpirun does not restart ranks, got --max-restarts ${opts.maxRestarts}`);
  const command = opts.command ?? { file: process.execPath, args: [opts.script, ...opts.scriptArgs] };
  const port = opts.masterPort === 0 ? await freePort() : opts.masterPort;
  const childEnv: NodeJS.ProcessEnv = {
    ...env,
    COLLECTIVES_ENGINE: 'mpi',
    MASTER_ADDR: opts.masterAddr,
    MASTER_PORT: String(port),
    COLLECTIVES_TOKEN: env.COLLECTIVES_TOKEN ?? `mpirun-${process.pid}-${Date.now()}`,
  };
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const args = mpirunArgs(opts.nprocPerNode, command, os.availableParallelism(), isRoot);
  const mpirun = env.COLLECTIVES_MPIRUN ?? 'mpirun';
  return new Promise((resolve, reject) => {
    const child = spawn(mpirun, args, { env: childEnv, stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('error', (err: NodeJS.ErrnoException) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      reject(
        err.code === 'ENOENT'
          ? new Error(`--engine mpi: ${mpirun} not found (install Open MPI, e.g. apt-get install openmpi-bin, or set COLLECTIVES_MPIRUN)`)
          : err,
      );
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1));
    });
  });
}
