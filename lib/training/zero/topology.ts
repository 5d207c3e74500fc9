/**
 * Where the ranks sit: which node each belongs to (from LOCAL_RANK / LOCAL_WORLD_SIZE, which
 * collectives-run sets from --nproc-per-node and --nnodes), and the communicators ZeRO++ needs
 * on top of the world: the ranks of one node, the ranks of one local index across nodes, and
 * the hpZ groups of k ranks inside a node.
 */
import type { Communicator } from '../../index';
import { argRangeError } from '../errors';

export interface Topology {
  /** The node of every rank, 0-based, in rank order. */
  readonly nodeOf: readonly number[];
  readonly nodes: number;
  /** Ranks per node (the same on every node: checked). */
  readonly perNode: number;
  /** This rank's node and index within it. */
  readonly node: number;
  readonly localIndex: number;
}

/** Every rank's node, from each rank's (rank − LOCAL_RANK, LOCAL_WORLD_SIZE): one all-gather. */
export async function discoverTopology(comm: Communicator): Promise<Topology> {
  const mine = Int32Array.of(comm.rank - comm.localRank, comm.localSize);
  const all = new Int32Array(2 * comm.size);
  await comm.allGather(mine, all);
  const firsts = [...new Set(Array.from({ length: comm.size }, (_, r) => all[2 * r]))].sort((a, b) => a - b);
  const nodeOf = Array.from({ length: comm.size }, (_, r) => firsts.indexOf(all[2 * r]));
  const perNode = all[1];
  const uniform = firsts.every((f, i) => f === i * perNode) && nodeOf.every((n, r) => n === Math.floor(r / perNode) && all[2 * r + 1] === perNode);
  if (!uniform || comm.size % perNode !== 0) {
    // Not an error yet: only ZeRO++'s node-level groups need it (checked where used).
    return Object.freeze({ nodeOf: Object.freeze(nodeOf), nodes: 0, perNode: 0, node: nodeOf[comm.rank], localIndex: comm.localRank });
  }
  return Object.freeze({ nodeOf: Object.freeze(nodeOf), nodes: comm.size / perNode, perNode, node: nodeOf[comm.rank], localIndex: comm.rank % perNode });
}

/** Refuses ZeRO++'s node-level features where the nodes are not equal blocks of consecutive ranks. */
export function requireNodes(t: Topology, what: string): void {
  if (t.nodes === 0) {
    throw argRangeError(what, 'nodes of equal size holding consecutive ranks (as collectives-run --nnodes M --nproc-per-node K starts them)', `ranks on nodes ${t.nodeOf.join(',')}`);
  }
}

export interface ZeroGroups {
  /** The ranks of this node (qgZ's first all-to-all); null when the world is one node or one rank per node. */
  intra: Communicator | null;
  /** The ranks of this local index on every node (qgZ's second all-to-all); null with one node. */
  inter: Communicator | null;
  /** hpZ's group of k consecutive ranks inside a node; null without hpZ. */
  hpz: Communicator | null;
}

/** Splits the communicators the options need (every rank calls this with the same options). */
export async function makeGroups(comm: Communicator, t: Topology, o: { hierarchicalPartition: number; quantizedGradients: unknown }): Promise<ZeroGroups> {
  const groups: ZeroGroups = { intra: null, inter: null, hpz: null };
  const k = o.hierarchicalPartition;
  if (k > 1) {
    requireNodes(t, 'options.hierarchicalPartition');
    if (t.perNode % k !== 0) throw argRangeError('options.hierarchicalPartition', `a divisor of the ranks per node (${t.perNode})`, k);
  }
  if (o.quantizedGradients !== undefined) {
    requireNodes(t, 'options.quantizedGradients');
    if (t.perNode > 1 && t.nodes > 1) {
      groups.intra = await comm.split(t.node, t.localIndex);
      groups.inter = await comm.split(t.localIndex, t.node);
    }
  }
  if (k > 1) groups.hpz = k === t.perNode && groups.intra !== null ? groups.intra : await comm.split(Math.floor(comm.rank / k), comm.rank % k);
  return groups;
}
