#!/usr/bin/env node
/** `collectives-run [options] <script> [args...]`: starts this node's ranks of a job. */

import { Command, CommanderError } from 'commander';
import * as os from 'node:os';
import { DEFAULTS, Machine, RawLaunchOptions, UsageError, normalizeArgv, validateOptions } from './options';
import { resolveCommand } from './script';
import { run } from './supervisor';
import { runUnderMpirun } from './mpirun';
import { exitWhenFlushed } from './exit';

const NAME = 'collectives-run';

function program(): Command {
  return new Command(NAME)
    .description(
      "Start this node's ranks of a collectives job (torchrun's environment: RANK, LOCAL_RANK, WORLD_SIZE, " +
        'LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Node 0 hosts the rendezvous store.',
    )
    .usage('[options] <script> [args...]')
    .argument('<script>', 'program every rank runs; .js, .cjs and .mjs files run under this Node.js')
    .argument('[args...]', 'arguments for the script (everything after <script>, or after --)')
    .option('--nproc-per-node <n>', 'ranks to start on this node; auto: one per GPU, else one per CPU; cpu; gpu', DEFAULTS.nprocPerNode)
    .option('--nnodes <m>', 'nodes in the job (with --elastic also MIN:MAX, MIN = MAX)', DEFAULTS.nnodes)
    .option('--node-rank <k>', "this node's index, 0 to nnodes-1", DEFAULTS.nodeRank)
    .option('--master-addr <addr>', 'address of node 0, where the store listens', DEFAULTS.masterAddr)
    .option('--master-port <port>', 'store port; 0 picks a free one (single node only)', DEFAULTS.masterPort)
    .option('--standalone', 'one node, the store on a free port of 127.0.0.1 (no --master-addr/--master-port)')
    .option('--max-restarts <r>', 'times to restart the whole group after a rank fails (with --elastic: restarts of single ranks, counted over all ranks)', DEFAULTS.maxRestarts)
    .option('--elastic', 'a failed rank is restarted alone while the others go on (the training layer reforms its groups through the store)')
    .option('--min-workers <n>', 'with --elastic: the fewest live ranks training may go on with, 1 to the number of ranks', DEFAULTS.minWorkers)
    .option('-m, --module', "<script> is a package in node_modules: run its bin")
    .option('--log-dir <dir>', "write ranks' output to <dir>/<run id>/attempt_<n>/<rank>/{stdout,stderr}.log")
    .option('-r, --redirects <s>', 'streams only to the files: 0 none, 1 stdout, 2 stderr, 3 both; or per local rank, 0:3,1:2')
    .option('-t, --tee <s>', 'streams to the files and the console, as --redirects')
    .option('--local-ranks-filter <ranks>', 'local ranks whose output the console shows, e.g. 0 or 0,2')
    .option('--no-prefix', 'copy rank output as is instead of prefixing lines with [rank<N>]: ')
    .option('--grace-ms <ms>', 'time between SIGTERM and SIGKILL when stopping ranks', DEFAULTS.graceMs)
    .option('--engine <name>', 'gloo: this launcher starts the ranks; mpi: hand the job to mpirun, which starts them with the MPI engine (one node)', 'gloo')
    .addHelpText('after', '\nOptions also take torchrun\'s underscore spellings (--nproc_per_node, --master_port, …).')
    // Options after <script> belong to the script.
    .passThroughOptions()
    .showHelpAfterError(`(see ${NAME} --help)`)
    .exitOverride()
    .helpCommand(false);
}

const machine: Machine = {
  cpus: () => os.availableParallelism(),
  gpus: () => {
    // Loads the addon only for auto and gpu; without one, there is no CUDA to count.
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { backends } = require('../core/backends') as typeof import('../core/backends');
      const cuda = backends().cuda;
      return cuda.available ? (cuda.devices ?? 0) : 0;
    } catch {
      return 0;
    }
  },
};

async function main(argv: string[]): Promise<number> {
  try {
    const cmd = program();
    const takesValue = new Set<string>();
    const flags = new Set<string>();
    for (const o of cmd.options) {
      for (const name of [o.long, o.short]) if (name) (o.required || o.optional ? takesValue : flags).add(name);
    }
    cmd.parse(normalizeArgv(argv, takesValue, flags));
    const [script, scriptArgs] = cmd.processedArgs as [string, string[]];
    const raw = cmd.opts<RawLaunchOptions>();
    const given = new Set(Object.keys(raw).filter((k) => cmd.getOptionValueSource(k) === 'cli'));
    const opts = validateOptions(script, scriptArgs, raw, machine, given);
    opts.command = resolveCommand(script, scriptArgs, { module: raw.module });
    const engine = (raw as RawLaunchOptions & { engine?: string }).engine ?? 'gloo';
    if (engine !== 'gloo' && engine !== 'mpi') throw new UsageError(`--engine: expected gloo or mpi, got ${JSON.stringify(engine)}`);
    if (engine === 'mpi' && opts.elastic) {
      throw new UsageError('--engine mpi: expected no --elastic (mpirun ends the whole job when one rank is lost), got --elastic');
    }
    return await (engine === 'mpi' ? runUnderMpirun(opts) : run(opts));
  } catch (err) {
    // Commander has already printed its message (or the help text).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError) {
      process.stderr.write(`${NAME}: ${err.message}\n(see ${NAME} --help)\n`);
      return 2;
    }
    process.stderr.write(`${NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}


void main(process.argv).then(exitWhenFlushed);
