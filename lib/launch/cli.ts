#!/usr/bin/env node
/** `collectives-run [options] <script> [args...]`: starts this node's ranks of a job. */

import { Command, CommanderError } from 'commander';
import { DEFAULTS, RawLaunchOptions, UsageError, validateOptions } from './options';
import { run } from './supervisor';
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
    .option('--nproc-per-node <n>', 'ranks to start on this node', DEFAULTS.nprocPerNode)
    .option('--nnodes <m>', 'nodes in the job', DEFAULTS.nnodes)
    .option('--node-rank <k>', "this node's index, 0 to nnodes-1", DEFAULTS.nodeRank)
    .option('--master-addr <addr>', 'address of node 0, where the store listens', DEFAULTS.masterAddr)
    .option('--master-port <port>', 'store port; 0 picks a free one (single node only)', DEFAULTS.masterPort)
    .option('--max-restarts <r>', 'times to restart the whole group after a rank fails', DEFAULTS.maxRestarts)
    .option('--no-prefix', 'copy rank output as is instead of prefixing lines with [rank<N>]: ')
    .option('--grace-ms <ms>', 'time between SIGTERM and SIGKILL when stopping ranks', DEFAULTS.graceMs)
    // Options after <script> belong to the script.
    .passThroughOptions()
    .showHelpAfterError(`(see ${NAME} --help)`)
    .exitOverride()
    .helpCommand(false);
}

async function main(argv: string[]): Promise<number> {
  try {
    const cmd = program();
    cmd.parse(argv);
    const [script, scriptArgs] = cmd.processedArgs as [string, string[]];
    const opts = validateOptions(script, scriptArgs, cmd.opts<RawLaunchOptions>());
    return await run(opts);
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
