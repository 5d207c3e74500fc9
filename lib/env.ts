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
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    const e = new RangeError(`environment variable ${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
    (e as RangeError & { code: string }).code = 'INVALID_ARGUMENT';
    throw e;
  }
  return n;
}

export function rankFromEnvironment(env: Env = process.env): RankInfo {
  const torchRank = intVar(env, 'RANK');
  const torchSize = intVar(env, 'WORLD_SIZE');
  if (torchRank !== undefined && torchSize !== undefined) {
    return {
      rank: torchRank,
      worldSize: torchSize,
      localRank: intVar(env, 'LOCAL_RANK') ?? torchRank,
      localWorldSize: intVar(env, 'LOCAL_WORLD_SIZE') ?? torchSize,
      source: 'torchrun',
    };
  }
  const ompiRank = intVar(env, 'OMPI_COMM_WORLD_RANK');
  const ompiSize = intVar(env, 'OMPI_COMM_WORLD_SIZE');
  if (ompiRank !== undefined && ompiSize !== undefined) {
    return {
      rank: ompiRank,
      worldSize: ompiSize,
      localRank: intVar(env, 'OMPI_COMM_WORLD_LOCAL_RANK') ?? ompiRank,
      localWorldSize: intVar(env, 'OMPI_COMM_WORLD_LOCAL_SIZE') ?? ompiSize,
      source: 'openmpi',
    };
  }
  const slurmRank = intVar(env, 'SLURM_PROCID');
  const slurmSize = intVar(env, 'SLURM_NTASKS');
  if (slurmRank !== undefined && slurmSize !== undefined) {
    return {
      rank: slurmRank,
      worldSize: slurmSize,
      localRank: intVar(env, 'SLURM_LOCALID') ?? slurmRank,
      localWorldSize: intVar(env, 'SLURM_NTASKS_PER_NODE') ?? slurmSize,
      source: 'slurm',
    };
  }
  return { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, source: 'default' };
}
