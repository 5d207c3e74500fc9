import type { BenchOp } from './ops';
import { PLAIN_OPS } from './ops';
import { QUANTIZED_OPS } from './quantized-ops';

/** Every operation collectives-bench runs: a plain list, looked up by nccl-tests' name. */
export const OPERATIONS: readonly BenchOp[] = [...PLAIN_OPS, ...QUANTIZED_OPS];

export function findOp(name: string): BenchOp | undefined {
  return OPERATIONS.find((op) => op.name === name);
}

export function opNames(): string[] {
  return OPERATIONS.map((op) => op.name);
}
