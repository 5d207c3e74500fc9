import { argRangeError } from './errors';

/**
 * The shape rules of the collectives, written once: the names of a call's buffer arguments (as
 * error messages say them), the options it takes, and how its lengths relate to each other and
 * to the world size. Host arrays, DeviceBuffers and the quantized forms are all checked here.
 */

/** The collectives whose buffers follow one fixed length rule. */
export type Collective = 'allReduce' | 'reduceScatter' | 'allGather' | 'broadcast' | 'reduce' | 'allToAll';

/**
 * Collectives whose buffer exists on the root only (gather's output, scatter's input: null
 * elsewhere), so their lengths are checked from what this rank holds.
 */
export type RootedMove = 'gather' | 'scatter';

/** Every call with a shape rule here. */
export type ShapedCall = Collective | RootedMove;

export interface ShapeRule {
  /** The first buffer's name in messages. */
  readonly input: 'buffer' | 'input';
  /** The second buffer's name: a positional argument, an option (out-of-place), or none. */
  readonly output: 'output' | 'options.output' | null;
  /** Takes options.op. */
  readonly reduces: boolean;
  /** Takes options.root. */
  readonly rooted: boolean;
  /** The option keys the call accepts. */
  readonly keys: readonly string[];
}

function rule(input: ShapeRule['input'], output: ShapeRule['output'], reduces: boolean, rooted: boolean): ShapeRule {
  const keys = ['dtype', 'timeoutMs'];
  if (reduces) keys.push('op');
  if (rooted) keys.push('root');
  if (output === 'options.output') keys.push('output');
  return Object.freeze({ input, output, reduces, rooted, keys: Object.freeze(keys) });
}

export const SHAPES: Readonly<Record<ShapedCall, ShapeRule>> = Object.freeze({
  allReduce: rule('buffer', 'options.output', true, false),
  reduceScatter: rule('input', 'output', true, false),
  allGather: rule('input', 'output', false, false),
  broadcast: rule('buffer', null, false, true),
  reduce: rule('buffer', 'options.output', true, true),
  allToAll: rule('input', 'output', false, false),
  gather: rule('input', 'output', false, true),
  scatter: rule('input', 'output', false, true),
});

/**
 * Checks the lengths of a call of `kind` on `size` ranks; `outLength` is undefined when the
 * call is in place (the output is the input). Throws a RangeError naming the argument.
 */
export function checkLengths(kind: ShapedCall, size: number, inLength: number | undefined, outLength: number | undefined): void {
  // Only gather and scatter pass no input length (scatter's input off the root).
  const inLen = inLength ?? 0;
  const { input, output } = SHAPES[kind];
  switch (kind) {
    case 'reduceScatter':
      expectLength(input, inLen, (outLength ?? 0) * size, `output.length × world size (${outLength} × ${size})`);
      return;
    case 'allGather':
      expectLength(output as string, outLength ?? 0, inLen * size, `input.length × world size (${inLen} × ${size})`);
      return;
    case 'allToAll':
      if (inLen % size !== 0) throw argRangeError(input, `a length divisible by the world size (${size})`, inLen);
      expectLength(output as string, outLength ?? inLen, inLen, `the ${input}'s length`);
      return;
    case 'allReduce':
    case 'reduce':
      if (outLength !== undefined) expectLength(output as string, outLength, inLen, `the ${input}'s length`);
      return;
    case 'broadcast':
      return;
    // The root's buffer holds one block of `length` elements per rank, in rank order; the
    // other ranks pass null there (undefined here).
    case 'gather':
      if (outLength !== undefined) expectLength(output as string, outLength, (inLength ?? 0) * size, `input.length × world size (${inLength} × ${size})`);
      return;
    case 'scatter':
      if (inLength !== undefined) expectLength(input, inLength, (outLength ?? 0) * size, `output.length × world size (${outLength} × ${size})`);
      return;
  }
}

/** The length an error-feedback residual needs, given the input's length (see errorFeedbackLength). */
export function residualLength(kind: 'allToAll' | 'reduceScatter' | 'allGather' | 'allReduce', inLength: number, size: number): number {
  return kind === 'allReduce' ? inLength + Math.ceil(inLength / size) : inLength;
}

/**
 * Bytes this rank sends in a call of `kind` over `bytes` bytes (see Communicator.stats); for
 * gather and scatter `bytes` is one rank's block (gather's input, scatter's output).
 */
export function wireBytes(kind: ShapedCall, bytes: number, size: number, rank: number, root: number): { sent: number; received: number } {
  const share = (bytes * (size - 1)) / size;
  switch (kind) {
    case 'allReduce':
      return { sent: 2 * share, received: 2 * share };
    case 'reduceScatter':
    case 'allGather':
    case 'allToAll':
      return { sent: share, received: share };
    case 'broadcast':
      return size === 1 ? { sent: 0, received: 0 } : { sent: rank === root ? bytes : 0, received: rank === root ? 0 : bytes };
    case 'reduce':
      return size === 1 ? { sent: 0, received: 0 } : { sent: rank === root ? 0 : bytes, received: rank === root ? bytes : 0 };
    // The root keeps its own block: it receives (gather) or sends (scatter) the n − 1 others.
    case 'gather':
      return { sent: rank === root ? 0 : bytes, received: rank === root ? bytes * (size - 1) : 0 };
    case 'scatter':
      return { sent: rank === root ? bytes * (size - 1) : 0, received: rank === root ? 0 : bytes };
  }
}

function expectLength(name: string, length: number, expected: number, what: string): void {
  if (length !== expected) throw argRangeError(name, `${expected} elements (${what})`, length);
}
