import * as tf from '@tensorflow/tfjs';
import { inputGradientFactor, leanGradientsActive } from '../gradients/batch-norm';
import type { NativeBackend } from './native-backend';
import { ourOpsAvailable } from './our-ops';

/**
 * Batch normalisation in inference, then a residual input added and ReLU, as one op of ours
 * (`AntifragileBatchNorm`, C++ in ./addon/batch_norm.cc): one pass over memory where TensorFlow
 * runs `FusedBatchNorm`, `Add` and `Relu`, three. A ResNet's forward pass is that sequence after
 * every convolution; in the analysis of ResNet-18 the three ops took a fifth of the time.
 *
 * The values are TensorFlow's, bit for bit. Which formula its batch norm follows depends on the
 * kernel it picks (oneDNN's, on this project's machines: a fused multiply-add when the channel
 * count is a multiple of 4, separate roundings otherwise), so the formula is not assumed: the
 * first call for a channel count compares both of ours with TensorFlow's own ops on probe values
 * (NaN, ±0 and infinities among them) and keeps the one that matches everywhere, or none, and
 * then {@link batchNormAddRelu} answers undefined and the caller runs TensorFlow's ops.
 * Differentiable in `x` and `side` through the same gradients as the three ops'.
 */

const KERNEL = 'AntifragileBatchNorm';
const BACKEND = 'tensorflow';

/** A batch norm in inference: its input and weights (as `tf.batchNorm` takes them). */
export interface BatchNormInputs {
  x: tf.Tensor;
  mean: tf.Tensor;
  variance: tf.Tensor;
  /** γ; none = 1. */
  scale?: tf.Tensor;
  /** β; none = 0. */
  offset?: tf.Tensor;
  varianceEpsilon: number;
}

export interface BatchNormAddReluArgs extends BatchNormInputs {
  /** Added after the normalisation (x's shape). */
  side?: tf.Tensor;
  /** ReLU last. */
  relu: boolean;
}

/** Formula per channel count: 0 or 1 (./addon/batch_norm.cc), null where neither matched. */
const formulas = new Map<number, 0 | 1 | null>();
let registered = false;
let calls = 0;

let copiedGradients = 0;

/** How many times {@link reluScaleGradient} ran over copies of its `y` (tests check it is used). */
export function copiedReluScaleGradientCount(): number {
  return copiedGradients;
}

/** How many times the op ran for callers, probes aside (tests check it is used). */
export function batchNormCallCount(): number {
  return calls;
}

interface OpAttrs {
  varianceEpsilon: number;
  formula: number;
  relu: boolean;
  /** Whether a side was given (its gradient is then computed); the op itself ignores it. */
  withSide?: boolean;
}

function runOp(inputs: tf.Tensor[], attrs: OpAttrs): tf.Tensor {
  const backend = tf.backend() as unknown as NativeBackend;
  const b = backend.binding;
  const opAttrs = [
    { name: 'epsilon', type: b.TF_ATTR_FLOAT, value: attrs.varianceEpsilon },
    { name: 'formula', type: b.TF_ATTR_INT, value: attrs.formula },
    { name: 'relu', type: b.TF_ATTR_BOOL, value: attrs.relu },
  ];
  return backend.executeMultipleOutputs(KERNEL, opAttrs, inputs, 1)[0];
}

/**
 * ReLU's gradient and the lean batch norm gradient's input product (`dy·step(y)`, then times
 * the `[C]` factor γ/√(variance + ε) as ../gradients/batch-norm.ts computes it) in one pass of
 * `AntifragileReluScaleGrad`; the step's product too when the side needs it.
 */
function reluScaleGrad(
  dy: tf.Tensor,
  y: tf.Tensor,
  factor: tf.Tensor,
  withSide: boolean,
): { dx: tf.Tensor; g: tf.Tensor } {
  const backend = tf.backend() as unknown as NativeBackend;
  const b = backend.binding;
  const attrs = [{ name: 'with_side', type: b.TF_ATTR_BOOL, value: withSide }];
  const [dx, g] = backend.executeMultipleOutputs(
    'AntifragileReluScaleGrad',
    attrs,
    [dy, y, factor],
    2,
  );
  return { dx, g };
}

/**
 * The gradient of `relu(batchNorm(x) + side)` from its output `y` (see {@link reluScaleGrad}) in
 * one pass, where `y` may be one copy of a batch that `dy` holds copies of, stacked along the
 * first axis (each copy's steps are then `y`'s): `factor` is γ/√(variance + ε) as the lean
 * gradient computes it, `g` the side's gradient (empty without `withSide`). Undefined where our
 * ops do not run. A NaN in `y` gives 0 (TensorFlow's ReluGrad).
 */
export function reluScaleGradient(
  dy: tf.Tensor,
  y: tf.Tensor,
  factor: tf.Tensor,
  withSide: boolean,
): { dx: tf.Tensor; g: tf.Tensor } | undefined {
  const floats = [dy, y, factor].every((t) => t.dtype === 'float32');
  const copies = y.shape[0] > 0 && dy.shape[0] % y.shape[0] === 0;
  const rows = tf.util.arraysEqual(dy.shape.slice(1), y.shape.slice(1));
  if (!ourOpsAvailable() || !floats || !copies || !rows || dy.rank < 1) return undefined;
  if (dy.shape[0] > y.shape[0]) copiedGradients += 1;
  return reluScaleGrad(dy, y, factor, withSide);
}

/** The three ops' gradients in turn: ReLU's (from the output), Add's (dy to both), batch norm's. */
function gradFunc(dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) {
  const { varianceEpsilon, relu, withSide } = attrs as unknown as OpAttrs;
  const [x, mean, variance, scale, y] = saved;
  const inferenceOnly = () => {
    throw new Error(`internal: ${KERNEL} has gradients for x and side only (inference)`);
  };
  const rest = {
    mean: inferenceOnly,
    variance: inferenceOnly,
    scale: inferenceOnly,
    offset: inferenceOnly,
  };
  // (The op runs only on `tensorflow`, so its gradient does too.)
  if (relu && leanGradientsActive()) {
    // The factor by the lean gradient's own ops ([C]: cheap), the two passes in one.
    const factor = inputGradientFactor(variance, varianceEpsilon, scale);
    const { dx, g } = reluScaleGrad(
      tf.reshape(dy as tf.Tensor, y.shape),
      y,
      factor,
      withSide === true,
    );
    return { x: () => dx, side: () => g, ...rest };
  }
  const g = relu
    ? tf.getGradient('Relu').gradFunc(dy, [y], {}).x()
    : tf.reshape(dy as tf.Tensor, y.shape);
  const norm = tf.getGradient('FusedBatchNorm').gradFunc(g, [x, mean, variance, scale], {
    varianceEpsilon,
  });
  return { x: () => norm.x(), side: () => tf.reshape(g, y.shape), ...rest };
}

function register(): void {
  if (registered) return;
  tf.registerKernel({
    kernelName: KERNEL,
    backendName: BACKEND,
    kernelFunc: ({ inputs, attrs }) => {
      const { x, mean, variance, scale, offset, side } = inputs as Record<string, tf.Tensor>;
      calls += 1;
      return runOp([x, mean, variance, scale, offset, side], attrs as unknown as OpAttrs);
    },
  });
  tf.registerGradient({
    kernelName: KERNEL,
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    outputsToSave: [true],
    gradFunc,
  });
  registered = true;
}

/** Probe values: a fixed pseudo-random spread of magnitudes, with NaN, ±0 and infinities. */
export function probeValues(count: number, seed: number, spread: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const u = state / 2 ** 32;
    out[i] = (u - 0.5) * spread * Math.exp(8 * ((state >>> 8) / 2 ** 24) - 4);
  }
  return out;
}

/** Whether two tensors hold the same values bit for bit (−0 and NaN included). */
export function sameBits(a: tf.Tensor, b: tf.Tensor): boolean {
  const x = a.dataSync();
  const y = b.dataSync();
  return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
}

/** Which of our formulas gives TensorFlow's values for `channels` (see the module comment). */
function probe(channels: number): 0 | 1 | null {
  const found = tf.tidy(() => {
    const rows = 64;
    const xs = probeValues(rows * channels, 7, 20);
    const sides = probeValues(rows * channels, 11, 20);
    [NaN, Infinity, -Infinity, 0, -0].forEach((v, i) => (xs[(i * 37) % xs.length] = v));
    sides[3 % sides.length] = -0;
    const x = tf.tensor4d(xs, [rows, 1, 1, channels]);
    const side = tf.tensor4d(sides, [rows, 1, 1, channels]);
    const mean = tf.tensor1d(probeValues(channels, 13, 4));
    const variance = tf.tensor1d(probeValues(channels, 17, 2).map((v) => Math.abs(v)));
    const scale = tf.tensor1d(probeValues(channels, 19, 3));
    const offset = tf.tensor1d(probeValues(channels, 23, 2));
    const epsilon = 1e-3;
    const plain = tf.batchNorm(x, mean, variance, offset, scale, epsilon);
    const residual = tf.relu(tf.add(plain, side));
    for (const formula of [0, 1] as const) {
      const attrs = { varianceEpsilon: epsilon, formula, relu: false };
      const ours = runOp([x, mean, variance, scale, offset, tf.zeros([0])], attrs);
      const oursResidual = runOp([x, mean, variance, scale, offset, side], {
        ...attrs,
        relu: true,
      });
      if (sameBits(ours, plain) && sameBits(oursResidual, residual)) return formula;
    }
    return -1;
  });
  return found === 0 || found === 1 ? found : null;
}

/** Our op's formula that gives TensorFlow's batch norm for `channels`, or null (probed once). */
export function formulaFor(channels: number): 0 | 1 | null {
  let formula = formulas.get(channels);
  if (formula === undefined) {
    formula = probe(channels);
    formulas.set(channels, formula);
  }
  return formula;
}

/** Whether {@link batchNormAddRelu} gives TensorFlow's values for this many channels. */
export function batchNormFusable(channels: number): boolean {
  return ourOpsAvailable() && formulaFor(channels) !== null;
}

/**
 * `relu(batchNorm(x) + side)` (each part optional but the normalisation) over the last axis, as
 * `tf.batchNorm`, `tf.add` and `tf.relu` compute it; undefined where the op does not run (no ops
 * module, another backend, a channel count whose formula did not match, non-float inputs).
 */
export function batchNormAddRelu(args: BatchNormAddReluArgs): tf.Tensor | undefined {
  const { x, side } = args;
  const channels = x.shape[x.rank - 1];
  if (x.dtype !== 'float32' || x.rank < 1 || !batchNormFusable(channels)) return undefined;
  if (side && (side.dtype !== 'float32' || !tf.util.arraysEqual(side.shape, x.shape))) {
    return undefined;
  }
  register();
  return tf.tidy(() => {
    const inputs = {
      x,
      mean: args.mean,
      variance: args.variance,
      scale: args.scale ?? tf.ones([channels]),
      offset: args.offset ?? tf.zeros([channels]),
      side: side ?? tf.zeros([0]),
    };
    const attrs = {
      varianceEpsilon: args.varianceEpsilon,
      formula: formulaFor(channels) as number,
      relu: args.relu,
      withSide: side !== undefined,
    };
    return tf.engine().runKernel(KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  });
}
