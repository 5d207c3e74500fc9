/**
 * Runs one node's share of a job: hosts the rendezvous store on node 0, starts the ranks,
 * relays their output, and stops (and optionally restarts) the whole group when one fails;
 * with --elastic, restarts only the failed rank while the others go on.
 */

import { isFile } from './script';
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { StoreServer } from '../store/server';
import { DeathNotices } from './notices';
import { LaunchOptions, StreamSet, resolveToken } from './options';

const TAG = 'collectives-run';
// How often a stop checks whether the ranks' process groups are gone.
const POLL_MS = 50;
// After the ranks are gone, how long their pipes may stay open (held by a process that left
// the group) before the launcher stops reading them.
const PIPE_DRAIN_MS = 1000;
// A rank printing without newlines would otherwise grow the pending line without bound.
const MAX_PARTIAL_LINE = 64 * 1024;
const NEWLINE = Buffer.from('\n');

type Signal = NodeJS.Signals;

// The launcher's own signals end the job; a second one skips the grace period.
const HANDLED_SIGNALS: readonly Signal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

interface RankExit {
  code: number | null;
  signal: Signal | null;
  /** Set when the program could not be started at all. */
  error?: NodeJS.ErrnoException;
}

type AttemptResult =
  | { kind: 'ok' }
  | { kind: 'failed'; rank: number; exit: RankExit }
  | { kind: 'stopped'; signal: Signal };

// A reader that went away (`collectives-run ... | head`) ends the job as SIGPIPE would, instead
// of crashing on an unhandled EPIPE. The listener stays for good: the error of a write issued
// during a run can be emitted after the run has finished.
let onOutputError: (() => void) | null = null;
let outputGuarded = false;

function guardOutput(): void {
  if (outputGuarded) return;
  outputGuarded = true;
  const onError = (): void => onOutputError?.();
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
}

export async function run(opts: LaunchOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const token = resolveToken(opts.nnodes, env, () => randomBytes(32).toString('hex'));

  let store: StoreServer | null = null;
  let port = opts.masterPort;
  if (opts.nodeRank === 0) {
    try {
      store = await StoreServer.start({ host: opts.masterAddr, port: opts.masterPort, token });
    } catch (err) {
      throw new Error(
        `could not start the rendezvous store on ${opts.masterAddr}:${opts.masterPort}: ${(err as Error).message}`,
      );
    }
    port = store.port;
  }

  guardOutput();
  const supervisor = new Supervisor(opts, env, token, port);
  try {
    return await supervisor.run();
  } finally {
    await store?.close();
  }
}

class Supervisor {
  private readonly runIdBase: string;
  private ranks: RankProcess[] = [];
  private stopSignal: Signal | null = null;
  private stopping: Promise<void> | null = null;
  private killNow: (() => void) | null = null;
  /** `<log dir>/<run id>`, made when the first rank's file is opened. */
  private logRoot: string | null = null;

  constructor(
    private readonly opts: LaunchOptions,
    private readonly env: NodeJS.ProcessEnv,
    private readonly token: string,
    private readonly port: number,
  ) {
    // Every node must derive the same id without talking to the others, and only the token
    // is shared; a single node can simply pick one.
    this.runIdBase =
      opts.nnodes > 1
        ? createHash('sha256').update(`collectives-run\0${token}\0${opts.masterAddr}:${port}`).digest('hex').slice(0, 16)
        : randomBytes(8).toString('hex');
  }

  async run(): Promise<number> {
    const onSignal = (signal: Signal): void => this.onSignal(signal);
    // Last resort when the launcher dies from an exception: never leave ranks behind.
    const onExit = (): void => {
      for (const rank of this.ranks) rank.signalGroup('SIGKILL');
    };
    for (const s of HANDLED_SIGNALS) process.on(s, onSignal);
    process.on('exit', onExit);
    onOutputError = () => this.onSignal('SIGPIPE');
    try {
      if (this.opts.elastic) return await this.elastic();
      for (let attempt = 0; ; attempt++) {
        if (this.stopSignal !== null) return exitStatus(null, this.stopSignal);
        const result = await this.attempt(attempt);
        if (result.kind === 'ok') return 0;
        if (result.kind === 'stopped') return exitStatus(null, result.signal);
        if (this.stopSignal !== null) return exitStatus(null, this.stopSignal);
        if (attempt >= this.opts.maxRestarts) return exitStatusOf(result.exit);
      }
    } catch (err) {
      // e.g. spawn() refusing its arguments after some ranks already started.
      await this.stopAll();
      throw err;
    } finally {
      for (const s of HANDLED_SIGNALS) process.off(s, onSignal);
      process.off('exit', onExit);
      onOutputError = null;
    }
  }

  private onSignal(signal: Signal): void {
    if (this.stopSignal === null) {
      this.stopSignal = signal;
      if (signal !== 'SIGPIPE') process.stderr.write(`${TAG}: got ${signal}, stopping all ranks\n`);
      void this.stopAll();
    } else if (signal !== 'SIGPIPE') {
      process.stderr.write(`${TAG}: got ${signal} again, killing all ranks\n`);
      this.killNow?.();
    }
  }

  private async attempt(attempt: number): Promise<AttemptResult> {
    const { nprocPerNode, nodeRank } = this.opts;
    const runId = `${this.runIdBase}-${attempt}`;
    this.stopping = null;
    this.ranks = [];
    for (let localRank = 0; localRank < nprocPerNode; localRank++) {
      const rank = nodeRank * nprocPerNode + localRank;
      this.ranks.push(
        new RankProcess(rank, this.command(), this.opts.prefix, this.rankEnv(localRank, attempt, runId), this.output(localRank, rank, attempt)),
      );
    }

    // An array: the callbacks below fill it in, and TypeScript would narrow a `let` to null.
    const failed: { rank: RankProcess; exit: RankExit }[] = [];
    await new Promise<void>((resolve) => {
      let running = this.ranks.length;
      for (const rank of this.ranks) {
        void rank.exited.then((exit) => {
          running--;
          if (failed.length === 0 && this.stopSignal === null && isFailure(exit)) {
            failed.push({ rank, exit });
            const restart = attempt < this.opts.maxRestarts;
            process.stderr.write(
              `${TAG}: rank ${rank.rank}${rank.pid === undefined ? '' : ` (pid ${rank.pid})`} ${describeExit(exit)}; ` +
                (restart
                  ? `stopping the other ranks and restarting the group (restart ${attempt + 1} of ${this.opts.maxRestarts})\n`
                  : 'stopping the other ranks\n'),
            );
            void this.stopAll();
          }
          if (running === 0) resolve();
        });
      }
    });

    // Also reaches whatever a rank left running after it exited, on success too.
    await this.stopAll();
    await Promise.race([Promise.all(this.ranks.map((r) => r.closed)), delay(PIPE_DRAIN_MS)]);
    for (const rank of this.ranks) rank.finishOutput();

    if (this.stopSignal !== null) return { kind: 'stopped', signal: this.stopSignal };
    const [failure] = failed;
    if (failure !== undefined) return { kind: 'failed', rank: failure.rank.rank, exit: failure.exit };
    return { kind: 'ok' };
  }

  /**
   * `--elastic`: every slot (local rank) lives on its own. A rank that fails is reported to the
   * job through the store (the death notice) and restarted alone in its slot while restarts
   * are left; the other ranks never stop for it. The training layer reforms its groups around
   * the change. Ends when every slot's rank has exited and is not restarted.
   */
  private async elastic(): Promise<number> {
    const { nprocPerNode, nodeRank, maxRestarts } = this.opts;
    // One run id for the whole job: a restarted rank must find the survivors' keys.
    const runId = `${this.runIdBase}-0`;
    const notices = new DeathNotices({ host: this.opts.masterAddr, port: this.port, token: this.token }, runId);
    const spawned: RankProcess[] = [];
    let restarts = 0;
    let finished = 0;
    // The first failure not restarted, which gives the exit status (an object: TypeScript would
    // narrow a `let` that only the callbacks assign to null).
    const lost: { first?: RankExit } = {};
    // Set when a slot throws (spawn() refusing its arguments): the job is being torn down.
    let ending = false;
    const over = (): boolean => ending || this.stopSignal !== null;

    const slot = async (localRank: number): Promise<void> => {
      const rank = nodeRank * nprocPerNode + localRank;
      try {
        for (let incarnation = 0; !over(); incarnation++) {
          const proc = new RankProcess(
            rank,
            this.command(),
            this.opts.prefix,
            this.rankEnv(localRank, incarnation, runId),
            this.output(localRank, rank, incarnation),
          );
          // In place, so that a stop and the exit handler reach every slot's current process.
          this.ranks[localRank] = proc;
          spawned.push(proc);
          const exit = await proc.exited;
          if (over() || !isFailure(exit)) return;

          // Decided now, before any await, so that two failures cannot both take the last restart.
          const restart = restarts < maxRestarts;
          if (restart) restarts++;
          else lost.first ??= exit;
          const othersGoOn = nprocPerNode - finished - 1 > 0;
          process.stderr.write(
            `${TAG}: rank ${rank}${proc.pid === undefined ? '' : ` (pid ${proc.pid})`} ${describeExit(exit)}; ` +
              (restart ? `restarting it (restart ${restarts} of ${maxRestarts})` : `not restarting it (--max-restarts ${maxRestarts} spent)`) +
              (othersGoOn ? ', the other ranks go on\n' : '\n'),
          );
          await notices.write({ rank, incarnation, code: exit.code, signal: exit.signal });
          if (!restart) return;
          await this.stopLeftovers(proc);
          void Promise.race([proc.closed, delay(PIPE_DRAIN_MS)]).then(() => proc.finishOutput());
        }
      } finally {
        finished++;
      }
    };

    this.stopping = null;
    this.ranks = [];
    try {
      await Promise.all(Array.from({ length: nprocPerNode }, (_, localRank) => slot(localRank)));
    } catch (err) {
      ending = true;
      throw err;
    } finally {
      notices.close();
    }

    // Also reaches whatever the last ranks left running after they exited.
    await this.stopAll();
    await Promise.race([Promise.all(spawned.map((r) => r.closed)), delay(PIPE_DRAIN_MS)]);
    for (const proc of spawned) proc.finishOutput();

    if (this.stopSignal !== null) return exitStatus(null, this.stopSignal);
    return lost.first === undefined ? 0 : exitStatusOf(lost.first);
  }

  /** What a failed rank left running in its process group: SIGTERM, then SIGKILL after the grace period. */
  private async stopLeftovers(rank: RankProcess): Promise<void> {
    if (!anyGroupAlive([rank])) return;
    rank.signalGroup('SIGTERM');
    const deadline = Date.now() + this.opts.graceMs;
    // A stop of the whole job takes over (it reaches this group too).
    while (this.stopSignal === null && Date.now() < deadline && anyGroupAlive([rank])) await delay(POLL_MS);
    if (this.stopSignal === null && anyGroupAlive([rank])) rank.signalGroup('SIGKILL');
  }

  /**
   * A rank's environment. `restartCount` is the group's attempt, or with --elastic the rank's
   * own incarnation (how many times this slot has been restarted).
   */
  private rankEnv(localRank: number, restartCount: number, runId: string): NodeJS.ProcessEnv {
    const { nprocPerNode, nnodes, nodeRank } = this.opts;
    const rank = nodeRank * nprocPerNode + localRank;
    const worldSize = String(nnodes * nprocPerNode);
    const env: NodeJS.ProcessEnv = {
      ...this.env,
      RANK: String(rank),
      LOCAL_RANK: String(localRank),
      WORLD_SIZE: worldSize,
      LOCAL_WORLD_SIZE: String(nprocPerNode),
      GROUP_RANK: String(nodeRank),
      GROUP_WORLD_SIZE: String(nnodes),
      // torchrun's roles: every rank has the one role, so role ranks are the global ones.
      ROLE_NAME: 'default',
      ROLE_RANK: String(rank),
      ROLE_WORLD_SIZE: worldSize,
      MASTER_ADDR: this.opts.masterAddr,
      MASTER_PORT: String(this.port),
      TORCHELASTIC_RESTART_COUNT: String(restartCount),
      TORCHELASTIC_MAX_RESTARTS: String(this.opts.maxRestarts),
      TORCHELASTIC_RUN_ID: this.runIdBase,
      COLLECTIVES_TOKEN: this.token,
      COLLECTIVES_STORE_HOSTED: '1',
      COLLECTIVES_RUN_ID: runId,
      COLLECTIVES_RESTART_COUNT: String(restartCount),
    };
    if (this.opts.elastic) {
      env.COLLECTIVES_ELASTIC = '1';
      env.COLLECTIVES_ELASTIC_ID = `${rank}.${restartCount}`;
      env.COLLECTIVES_ELASTIC_MIN_WORKERS = String(this.opts.minWorkers ?? 1);
    }
    return env;
  }

  /** Where a rank's streams go: the console, and files under the log folder. */
  private output(localRank: number, rank: number, attempt: number): RankOutput {
    const toConsole = this.opts.toConsole?.(localRank) ?? { stdout: true, stderr: true };
    const toFile = this.opts.toFile?.(localRank) ?? { stdout: false, stderr: false };
    const files: RankOutput['files'] = {};
    if (toFile.stdout || toFile.stderr) {
      if (this.logRoot === null) {
        // torchrun too makes a temporary folder when files are asked for without a folder.
        const base = this.opts.logDir ?? fs.mkdtempSync(path.join(tmpdir(), `${TAG}-`));
        this.logRoot = path.resolve(base, this.runIdBase);
        process.stderr.write(`${TAG}: rank output files in ${this.logRoot}\n`);
      }
      const dir = path.join(this.logRoot, `attempt_${attempt}`, String(rank));
      fs.mkdirSync(dir, { recursive: true });
      if (toFile.stdout) files.stdout = path.join(dir, 'stdout.log');
      if (toFile.stderr) files.stderr = path.join(dir, 'stderr.log');
    }
    return { console: toConsole, files };
  }

  private command(): { file: string; args: string[] } {
    if (this.opts.command) return this.opts.command;
    const { script, scriptArgs } = this.opts;
    if (/\.(c|m)?js$/i.test(script)) {
      return { file: process.execPath, args: [...process.execArgv, script, ...scriptArgs] };
    }
    // spawn() searches PATH for a bare name, so `collectives-run train.sh` would miss ./train.sh.
    if (!script.includes(path.sep) && isFile(script)) return { file: `.${path.sep}${script}`, args: scriptArgs };
    return { file: script, args: scriptArgs };
  }

  /** SIGTERM to every rank's process group, SIGKILL to what is left after the grace period. */
  private stopAll(): Promise<void> {
    if (this.stopping === null) this.stopping = this.stopGroups(this.ranks);
    return this.stopping;
  }

  private async stopGroups(ranks: readonly RankProcess[]): Promise<void> {
    const gone = (): boolean => ranks.every((r) => r.hasExited) && !anyGroupAlive(ranks);
    if (gone()) return;
    for (const rank of ranks) rank.signalGroup('SIGTERM');
    const skip = new Promise<void>((resolve) => {
      this.killNow = resolve;
    });
    let skipped = false;
    void skip.then(() => {
      skipped = true;
    });
    const deadline = Date.now() + this.opts.graceMs;
    while (!skipped && !gone()) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await Promise.race([delay(Math.min(POLL_MS, left)), skip]);
    }
    this.killNow = null;
    if (!gone()) {
      for (const rank of ranks) rank.signalGroup('SIGKILL');
    }
    await Promise.all(ranks.map((r) => r.exited));
  }
}

interface RankOutput {
  console: StreamSet;
  files: { stdout?: string; stderr?: string };
}

class RankProcess {
  readonly exited: Promise<RankExit>;
  readonly closed: Promise<void>;
  readonly pid: number | undefined;
  hasExited = false;
  private readonly child: ChildProcess;
  private readonly outputs: LineRelay[] = [];
  private readonly fds: number[] = [];

  constructor(
    readonly rank: number,
    command: { file: string; args: string[] },
    prefix: boolean,
    env: NodeJS.ProcessEnv,
    output: RankOutput = { console: { stdout: true, stderr: true }, files: {} },
  ) {
    const wanted = (name: 'stdout' | 'stderr'): 'pipe' | 'ignore' =>
      output.console[name] || output.files[name] !== undefined ? 'pipe' : 'ignore';
    // Its own process group, so that a signal to the group also reaches what the rank started.
    this.child = spawn(command.file, command.args, { env, detached: true, stdio: ['ignore', wanted('stdout'), wanted('stderr')] });
    this.pid = this.child.pid;

    const label = prefix ? Buffer.from(`[rank${rank}]: `) : null;
    for (const [name, stream, out] of [
      ['stdout', this.child.stdout, process.stdout],
      ['stderr', this.child.stderr, process.stderr],
    ] as const) {
      if (stream === null) continue;
      const file = output.files[name];
      if (file !== undefined) {
        // Written as it arrives, synchronously: the file is whole when the rank's exit is reported.
        const fd = fs.openSync(file, 'a');
        this.fds.push(fd);
        stream.on('data', (chunk: Buffer) => {
          try {
            fs.writeSync(fd, chunk);
          } catch {
            // A full disk must not end the job; the console still has the output, if shown.
          }
        });
      }
      if (output.console[name]) this.outputs.push(new LineRelay(stream, out, label));
      else stream.on('error', () => {});
    }

    this.exited = new Promise<RankExit>((resolve) => {
      const done = (exit: RankExit): void => {
        if (this.hasExited) return;
        this.hasExited = true;
        resolve(exit);
      };
      this.child.once('exit', (code, signal) => done({ code, signal }));
      this.child.once('error', (error: NodeJS.ErrnoException) => {
        // 'error' also reports a failed kill(); only a process that never started has no pid.
        if (this.child.pid === undefined) done({ code: null, signal: null, error });
      });
    });
    this.closed = new Promise<void>((resolve) => {
      this.child.once('close', () => resolve());
      void this.exited.then((exit) => {
        if (exit.error !== undefined) resolve();
      });
    });
  }

  signalGroup(signal: Signal): void {
    if (this.pid === undefined) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is already empty.
    }
  }

  finishOutput(): void {
    for (const relay of this.outputs) relay.finish();
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    for (const fd of this.fds.splice(0)) fs.closeSync(fd);
  }
}

/** Copies a rank's output stream to the launcher's, prefixing whole lines. */
class LineRelay {
  private pending: Buffer | null = null;
  private finished = false;

  constructor(
    private readonly source: Readable,
    private readonly out: Writable,
    private readonly label: Buffer | null,
  ) {
    source.on('data', (chunk: Buffer) => {
      if (!this.write(chunk)) {
        source.pause();
        out.once('drain', () => source.resume());
      }
    });
    source.on('end', () => this.flush());
    source.on('error', () => {});
  }

  /** Stops reading and writes out a last line that had no newline. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.source.destroy();
    this.flush();
  }

  private write(chunk: Buffer): boolean {
    if (this.out.destroyed) return true;
    if (this.label === null) return this.out.write(chunk);
    const data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    const parts: Buffer[] = [];
    let start = 0;
    for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
      parts.push(this.label, data.subarray(start, nl + 1));
      start = nl + 1;
    }
    if (start < data.length) {
      const tail = data.subarray(start);
      if (tail.length >= MAX_PARTIAL_LINE) parts.push(this.label, tail, NEWLINE);
      else this.pending = Buffer.from(tail);
    }
    // One write per chunk keeps a rank's lines whole when ranks write at the same time.
    return parts.length === 0 ? true : this.out.write(Buffer.concat(parts));
  }

  private flush(): void {
    if (this.pending === null || this.label === null || this.out.destroyed) return;
    const line = Buffer.concat([this.label, this.pending, NEWLINE]);
    this.pending = null;
    this.out.write(line);
  }
}

/** Whether any process of the ranks' groups still runs; zombies do not count. */
function anyGroupAlive(ranks: readonly RankProcess[]): boolean {
  const pgids = new Set<number>();
  for (const rank of ranks) {
    if (rank.pid === undefined) continue;
    try {
      process.kill(-rank.pid, 0);
      pgids.add(rank.pid);
    } catch {
      // ESRCH: empty group.
    }
  }
  if (pgids.size === 0) return false;
  // Orphans are reaped by pid 1, which in a container may never do it: a zombie is dead
  // but still answers kill(-pgid, 0), and waiting for it would always take the full grace.
  return process.platform === 'linux' ? hasLiveMember(pgids) : true;
}

function hasLiveMember(pgids: ReadonlySet<number>): boolean {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ...": comm may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (pgids.has(Number(fields[2])) && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

function isFailure(exit: RankExit): boolean {
  return exit.error !== undefined || exit.signal !== null || exit.code !== 0;
}

function exitStatus(code: number | null, signal: Signal | null): number {
  if (signal !== null) return 128 + (osConstants.signals[signal] ?? 0);
  return code ?? 1;
}

function exitStatusOf(exit: RankExit): number {
  if (exit.error !== undefined) {
    // The shell's conventions: 127 for a command not found, 126 for one that cannot run.
    if (exit.error.code === 'ENOENT') return 127;
    if (exit.error.code === 'EACCES' || exit.error.code === 'ENOEXEC') return 126;
    return 1;
  }
  return exitStatus(exit.code, exit.signal);
}

function describeExit(exit: RankExit): string {
  if (exit.error !== undefined) return `could not be started (${exit.error.message})`;
  if (exit.signal !== null) return `was killed by ${exit.signal} (exit status ${exitStatus(null, exit.signal)})`;
  return `exited with code ${exit.code}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
