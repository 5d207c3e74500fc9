/**
 * collectives/tfjs: TF.js variables ⇄ a ParameterSet.
 *
 * `@tensorflow/tfjs-core` is an optional peer dependency. Its types are imported as types only;
 * the module itself is needed only by push() and backward() (to make tensors and take
 * gradients) and is resolved then, from `options.tf` when given, else by requiring
 * `@tensorflow/tfjs-core`. Pass `options.tf` when the program's tf is another copy of the module
 * (`@tensorflow/tfjs`, `@tensorflow/tfjs-node`) so that tensors are made by the same module as
 * the variables. pull() and setGradients() only read tensors and need no module.
 *
 * Every transfer is a copy: TF.js owns its tensors' memory (a backend's heap, the wasm memory),
 * so values and gradients cross into the ParameterSet's flat buffers and back. With a
 * DeviceBuffer ParameterSet they also cross the host: DeviceBuffer.copyFrom / copyTo of a host
 * array that TF.js read or will read.
 */
import type * as Tf from '@tensorflow/tfjs-core';
import type { DeviceBuffer } from '../../index';
import { argRangeError, argTypeError, checkKeys } from '../errors';
import { ParameterSet } from '../params';

/** What the adapter uses of the tf module. Both `@tensorflow/tfjs-core` and `@tensorflow/tfjs` fit. */
export type TfModule = Pick<typeof Tf, 'tensor' | 'tidy' | 'variableGrads' | 'dispose'>;

/** A tfjs-layers LayerVariable (an element of `model.trainableWeights`), as the adapter uses it. */
export interface LayerVariableLike {
  readonly name: string;
  readonly shape: readonly (number | null)[];
  readonly dtype: string;
  readonly constraint?: unknown;
  /** The underlying tf.Variable (tfjs-layers returns the variable itself, not a copy). */
  read(): Tf.Tensor;
  /** Assigns and then applies the weight's constraint, if any. */
  write(value: Tf.Tensor): unknown;
}

/** A tfjs-layers LayersModel (or a Layer), as the adapter uses it. */
export interface LayersModelLike {
  readonly trainableWeights: readonly LayerVariableLike[];
}

export type TfjsParameterSource = LayersModelLike | readonly (Tf.Variable | LayerVariableLike)[];

export interface TfjsParametersOptions {
  /** Put the ParameterSet on this CUDA device (a DeviceBuffer); default host memory. */
  device?: number;
  /** The ParameterSet's padMultiple (its buffers' length is rounded up to a multiple). */
  padMultiple?: number;
  /** The tf module to make tensors with (default: require('@tensorflow/tfjs-core') when needed). */
  tf?: TfModule;
}

export interface SetGradientsOptions {
  /**
   * Take a missing gradient as zero instead of an error. tf.variableGrads leaves out the
   * variables that the loss does not depend on (a frozen branch, an unused head).
   */
  allowMissing?: boolean;
}

interface Slot {
  readonly name: string;
  readonly shape: number[];
  readonly offset: number;
  readonly size: number;
  readonly variable: Tf.Variable;
  /** Set for a LayerVariable: writes go through it so that its constraint applies. */
  readonly layerVariable?: LayerVariableLike;
}

/**
 * The link between TF.js variables and the ParameterSet made from them: one tensor per variable,
 * named as the variable (a layer weight's name, e.g. `dense_Dense1/kernel`), in the variable's
 * shape, in the order given (a model's trainableWeights order).
 */
export class TfjsParameters {
  readonly params: ParameterSet;
  /** The tf.Variables, in the ParameterSet's order. */
  readonly variables: readonly Tf.Variable[];
  private readonly slots: readonly Slot[];
  private tfModule: TfModule | undefined;

  /** @internal use tfjsParameters(). */
  constructor(source: TfjsParameterSource, options?: TfjsParametersOptions) {
    const opts = checkKeys<TfjsParametersOptions>('options', options, ['device', 'padMultiple', 'tf']);
    if (opts.tf !== undefined && (opts.tf === null || typeof opts.tf.tensor !== 'function' || typeof opts.tf.tidy !== 'function')) {
      throw argTypeError('options.tf', 'the @tensorflow/tfjs-core module (or @tensorflow/tfjs)', opts.tf);
    }
    this.tfModule = opts.tf;
    const found = collect(source);
    const params = new ParameterSet(
      found.map((f) => ({ name: f.name, shape: f.shape })),
      { ...(opts.device !== undefined && { device: opts.device }), ...(opts.padMultiple !== undefined && { padMultiple: opts.padMultiple }) },
    );
    this.params = params;
    this.slots = found.map((f) => {
      const t = params.get(f.name);
      return { ...f, offset: t.offset, size: t.size };
    });
    this.variables = this.slots.map((s) => s.variable);
    this.pull();
  }

  /** The tensor names, in order. */
  get names(): string[] {
    return this.slots.map((s) => s.name);
  }

  /** Copies every variable's value into params.data (done once when the binding is made). */
  pull(): void {
    const data = this.params.data;
    for (const s of this.slots) {
      const values = s.variable.dataSync() as Float32Array;
      if (isHost(data)) data.set(values, s.offset);
      else data.copyFrom(values, { offset: s.offset });
    }
  }

  /**
   * Assigns params.data to the variables (after an optimizer step, a broadcast, a checkpoint
   * load). A LayerVariable with a constraint gets the constrained value, as after a Keras
   * optimizer update, and that value is copied back into params.data so that both agree.
   */
  push(): void {
    const tf = this.tf();
    const data = this.params.data;
    for (const s of this.slots) {
      // A fresh array: the cpu backend keeps the array it is given as the tensor's storage, and
      // the variable must not alias params.data, which optimizers and collectives write in place.
      const values = isHost(data) ? data.slice(s.offset, s.offset + s.size) : data.copyTo(new Float32Array(s.size), { offset: s.offset });
      tf.tidy(() => {
        const t = tf.tensor(values, s.shape, 'float32');
        if (s.layerVariable) s.layerVariable.write(t);
        else s.variable.assign(t);
      });
      if (s.layerVariable?.constraint != null) {
        const constrained = s.variable.dataSync() as Float32Array;
        if (isHost(data)) data.set(constrained, s.offset);
        else data.copyFrom(constrained, { offset: s.offset });
      }
    }
  }

  /**
   * Copies gradients, keyed by variable name as tf.variableGrads returns them, into
   * params.grad. Every gradient is checked (present, float32, the variable's shape) before any
   * is copied, so a bad map leaves params.grad as it was. Keys of other variables are ignored;
   * the tensors stay the caller's to dispose.
   */
  setGradients(grads: Tf.NamedTensorMap, options?: SetGradientsOptions): void {
    if (grads === null || typeof grads !== 'object') throw argTypeError('grads', 'a map of variable name to gradient tensor (from tf.variableGrads)', grads);
    const opts = checkKeys<SetGradientsOptions>('options', options, ['allowMissing']);
    if (opts.allowMissing !== undefined && typeof opts.allowMissing !== 'boolean') throw argTypeError('options.allowMissing', 'a boolean', opts.allowMissing);
    const found: (Tf.Tensor | undefined)[] = this.slots.map((s) => {
      const g = (grads as Record<string, Tf.Tensor | null | undefined>)[s.name];
      const what = `grads[${JSON.stringify(s.name)}]`;
      if (g == null) {
        if (opts.allowMissing) return undefined;
        throw argTypeError(
          what,
          `the gradient of variable ${s.name} (float32, shape [${s.shape.join(', ')}]); tf.variableGrads leaves out variables the loss does not use, pass { allowMissing: true } to take theirs as zero`,
          g,
        );
      }
      if (typeof g !== 'object' || typeof (g as Tf.Tensor).dataSync !== 'function') throw argTypeError(what, 'a tensor', g);
      if (g.dtype !== 'float32') throw invalid(TypeError, what, `a float32 tensor for variable ${s.name}`, `a ${g.dtype} tensor`);
      if (!sameShape(g.shape, s.shape)) throw invalid(RangeError, what, `shape [${s.shape.join(', ')}] (variable ${s.name})`, `shape [${g.shape.join(', ')}]`);
      return g;
    });
    const grad = this.params.grad;
    this.slots.forEach((s, i) => {
      const g = found[i];
      const values = g === undefined ? new Float32Array(s.size) : (g.dataSync() as Float32Array);
      if (isHost(grad)) grad.set(values, s.offset);
      else grad.copyFrom(values, { offset: s.offset });
    });
  }

  /**
   * Runs tf.variableGrads(f, variables), copies the gradients into params.grad, disposes them
   * and the loss tensor, and returns the loss as a number.
   */
  backward(f: () => Tf.Scalar, options?: SetGradientsOptions): number {
    if (typeof f !== 'function') throw argTypeError('f', 'a function returning the scalar loss', f);
    const tf = this.tf();
    const { value, grads } = tf.variableGrads(f, this.variables as Tf.Variable[]);
    try {
      this.setGradients(grads, options);
      return value.dataSync()[0];
    } finally {
      tf.dispose(Object.values(grads).filter((g): g is Tf.Tensor => g != null));
      value.dispose();
    }
  }

  private tf(): TfModule {
    this.tfModule ??= loadTf();
    return this.tfModule;
  }
}

/**
 * Makes a ParameterSet from a tfjs-layers model's trainable weights (`model.trainableWeights`),
 * or from a list of tf.Variables or LayerVariables, and copies their values into it.
 *
 * ```js
 * const tf = require('@tensorflow/tfjs-core');
 * const { tfjsParameters } = require('collectives/tfjs');
 * const binding = tfjsParameters(model);
 * const loss = binding.backward(() => lossOf(model, x, y)); // gradients now in binding.params.grad
 * // … all-reduce / optimizer step on binding.params …
 * binding.push();                                           // the model now has the new weights
 * ```
 */
export function tfjsParameters(source: TfjsParameterSource, options?: TfjsParametersOptions): TfjsParameters {
  return new TfjsParameters(source, options);
}

function loadTf(): TfModule {
  try {
    return require('@tensorflow/tfjs-core') as TfModule;
  } catch (err) {
    const e = new Error(
      'collectives/tfjs: @tensorflow/tfjs-core is not installed (it is an optional peer dependency): ' +
        'run `npm install @tensorflow/tfjs-core`, or pass your tf module as options.tf',
      { cause: err },
    );
    (e as Error & { code: string }).code = 'MODULE_NOT_FOUND';
    throw e;
  }
}

function collect(source: TfjsParameterSource): Omit<Slot, 'offset' | 'size'>[] {
  let list: readonly unknown[];
  let where: string;
  if (Array.isArray(source)) {
    list = source;
    where = 'variables';
  } else if (source !== null && typeof source === 'object' && Array.isArray((source as LayersModelLike).trainableWeights)) {
    list = (source as LayersModelLike).trainableWeights;
    where = 'model.trainableWeights';
  } else {
    throw argTypeError('source', 'a tfjs-layers model or an array of tf.Variables', source);
  }
  if (list.length === 0) throw argRangeError(where, 'at least one variable', 'an empty list');
  const seen = new Map<string, number>();
  return list.map((v, i) => {
    const at = `${where}[${i}]`;
    let variable: Tf.Variable;
    let layerVariable: LayerVariableLike | undefined;
    if (isLayerVariable(v)) {
      layerVariable = v;
      variable = v.read() as Tf.Variable;
    } else if (isVariable(v)) {
      variable = v;
    } else {
      throw argTypeError(at, 'a tf.Variable or a tfjs-layers LayerVariable', v);
    }
    const name = layerVariable?.name ?? variable.name;
    if (variable.dtype !== 'float32') throw invalid(TypeError, at, `a float32 variable (${name})`, `a ${variable.dtype} variable`);
    const prev = seen.get(name);
    if (prev !== undefined) throw argTypeError(at, `a variable name not used before (${where}[${prev}] is also named ${JSON.stringify(name)})`, name);
    seen.set(name, i);
    return { name, shape: [...variable.shape], variable, ...(layerVariable && { layerVariable }) };
  });
}

function isLayerVariable(v: unknown): v is LayerVariableLike {
  const o = v as LayerVariableLike;
  return o !== null && typeof o === 'object' && typeof o.read === 'function' && typeof o.write === 'function' && typeof o.name === 'string';
}

function isVariable(v: unknown): v is Tf.Variable {
  const o = v as Tf.Variable;
  return o !== null && typeof o === 'object' && typeof o.assign === 'function' && typeof o.dataSync === 'function' && typeof o.name === 'string';
}

/** An INVALID_ARGUMENT error whose received value is already a description (not quoted as a string). */
function invalid(Kind: typeof TypeError | typeof RangeError, name: string, expected: string, got: string): Error {
  const e = new Kind(`${name}: expected ${expected}, got ${got}`);
  (e as Error & { code: string }).code = 'INVALID_ARGUMENT';
  return e;
}

function isHost(b: Float32Array | DeviceBuffer): b is Float32Array {
  return b instanceof Float32Array;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
