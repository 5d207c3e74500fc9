import { argRangeError, argTypeError } from './errors';

/**
 * Where a rank learns who it is: explicit options first, then torchrun's
 * variables (set by collectives-run too), then OpenMPI's, then Slurm's.
 */
export interface RankInfo {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  /** Which launcher's variables were used, for messages. */
  source: 'options' | 'torchrun' | 'openmpi' | 'slurm' | 'default';
}

type Env = Record<string, string | undefined>;


function intVar(env: Env, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  // Plain decimal digits only: Number() would also take ' ', '0x1' and '1e3'.
  if (!/^[0-9]{1,9}$/.test(v)) {
    throw argRangeError(`environment variable ${name}`, 'a non-negative integer', v);
  }
  return Number(v);
}

function checked(info: RankInfo, rankVar: string, sizeVar: string): RankInfo {
  if (info.worldSize < 1) throw argRangeError(`environment variable ${sizeVar}`, 'at least 1', info.worldSize);
  if (info.rank >= info.worldSize) {
    throw argRangeError(`environment variable ${rankVar}`, `a rank below ${sizeVar} (${info.worldSize})`, info.rank);
  }
  return info;
}

// Each launcher's names for rank, world size, local rank and local size, in
// order of precedence.
const LAUNCHERS: readonly {
  source: RankInfo['source'];
  rank: string;
  size: string;
  localRank: string;
  localSize: string;
  /**
   * The launcher always sets rank and size together, so one without the other is a broken
   * environment (a WORLD_SIZE exported by hand, a RANK left over), not a world of one: torch
   * refuses it too. Slurm's SLURM_NTASKS is also set in an allocation's shell, where a process
   * not started by srun is rightly a world of one.
   */
  paired: boolean;
}[] = [
  { source: 'torchrun', rank: 'RANK', size: 'WORLD_SIZE', localRank: 'LOCAL_RANK', localSize: 'LOCAL_WORLD_SIZE', paired: true },
  {
    source: 'openmpi',
    paired: true,
    rank: 'OMPI_COMM_WORLD_RANK',
    size: 'OMPI_COMM_WORLD_SIZE',
    localRank: 'OMPI_COMM_WORLD_LOCAL_RANK',
    localSize: 'OMPI_COMM_WORLD_LOCAL_SIZE',
  },
  {
    source: 'slurm',
    rank: 'SLURM_PROCID',
    size: 'SLURM_NTASKS',
    localRank: 'SLURM_LOCALID',
    localSize: 'SLURM_NTASKS_PER_NODE',
    paired: false,
  },
];

export function rankFromEnvironment(env: Env = process.env): RankInfo {
  for (const l of LAUNCHERS) {
    const rank = intVar(env, l.rank);
    const worldSize = intVar(env, l.size);
    if (l.paired && rank === undefined && worldSize !== undefined) {
      throw argTypeError(`environment variable ${l.rank}`, `this process's rank, set together with ${l.size} (${l.size} is ${worldSize})`, undefined);
    }
    if (l.paired && rank !== undefined && worldSize === undefined) {
      throw argTypeError(`environment variable ${l.size}`, `the number of ranks, set together with ${l.rank} (${l.rank} is ${rank})`, undefined);
    }
    if (rank === undefined || worldSize === undefined) continue;
    return checked(
      {
        rank,
        worldSize,
        localRank: intVar(env, l.localRank) ?? rank,
        localWorldSize: intVar(env, l.localSize) ?? worldSize,
        source: l.source,
      },
      l.rank,
      l.size,
    );
  }
  return { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, source: 'default' };
}
