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

function invalid(message: string): RangeError {
  const e = new RangeError(message);
  (e as RangeError & { code: string }).code = 'INVALID_ARGUMENT';
  return e;
}

function intVar(env: Env, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  // Plain decimal digits only: Number() would also take ' ', '0x1' and '1e3'.
  if (!/^[0-9]{1,9}$/.test(v)) {
    throw invalid(`environment variable ${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

function checked(info: RankInfo, rankVar: string, sizeVar: string): RankInfo {
  if (info.worldSize < 1) throw invalid(`environment variable ${sizeVar}: expected at least 1, got ${info.worldSize}`);
  if (info.rank >= info.worldSize) {
    throw invalid(
      `environment variable ${rankVar}: expected a rank below ${sizeVar} (${info.worldSize}), got ${info.rank}`,
    );
  }
  return info;
}

export function rankFromEnvironment(env: Env = process.env): RankInfo {
  const torchRank = intVar(env, 'RANK');
  const torchSize = intVar(env, 'WORLD_SIZE');
  if (torchRank !== undefined && torchSize !== undefined) {
    return checked(
      {
        rank: torchRank,
        worldSize: torchSize,
        localRank: intVar(env, 'LOCAL_RANK') ?? torchRank,
        localWorldSize: intVar(env, 'LOCAL_WORLD_SIZE') ?? torchSize,
        source: 'torchrun',
      },
      'RANK',
      'WORLD_SIZE',
    );
  }
  const ompiRank = intVar(env, 'OMPI_COMM_WORLD_RANK');
  const ompiSize = intVar(env, 'OMPI_COMM_WORLD_SIZE');
  if (ompiRank !== undefined && ompiSize !== undefined) {
    return checked(
      {
        rank: ompiRank,
        worldSize: ompiSize,
        localRank: intVar(env, 'OMPI_COMM_WORLD_LOCAL_RANK') ?? ompiRank,
        localWorldSize: intVar(env, 'OMPI_COMM_WORLD_LOCAL_SIZE') ?? ompiSize,
        source: 'openmpi',
      },
      'OMPI_COMM_WORLD_RANK',
      'OMPI_COMM_WORLD_SIZE',
    );
  }
  const slurmRank = intVar(env, 'SLURM_PROCID');
  const slurmSize = intVar(env, 'SLURM_NTASKS');
  if (slurmRank !== undefined && slurmSize !== undefined) {
    return checked(
      {
        rank: slurmRank,
        worldSize: slurmSize,
        localRank: intVar(env, 'SLURM_LOCALID') ?? slurmRank,
        localWorldSize: intVar(env, 'SLURM_NTASKS_PER_NODE') ?? slurmSize,
        source: 'slurm',
      },
      'SLURM_PROCID',
      'SLURM_NTASKS',
    );
  }
  return { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, source: 'default' };
}
