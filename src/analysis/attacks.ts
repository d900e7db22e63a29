import * as tf from '@tensorflow/tfjs';
import { GraphRunner } from './graph';
import type { AnalyzeOptions } from './options';

/**
 * What a model's output is. `auto` (default): if the output comes from a softmax (a softmax
 * activation layer, or a layer with `activation: 'softmax'`), the attack uses the pre-softmax
 * values; otherwise the output is taken as logits.
 */
export type ModelOutputKind = NonNullable<AnalyzeOptions['output']>;

/** Options shared by the attacks. */
export interface AttackOptions {
  /** Clip the adversarial input to this range, e.g. `[0, 1]`; default: no clipping (as the authors). */
  clip?: [number, number];
  /** Examples per gradient computation; default 256. */
  batchSize?: number;
  /** How to read the model's output; default `'auto'`. */
  output?: ModelOutputKind;
}

/** PGD's default: {@link PGD_DEFAULTS}`.steps` signed-gradient steps of ε/`stepDivisor`. */
export const PGD_DEFAULTS = { steps: 10, stepDivisor: 4 } as const;

/** The default PGD settings for radius ε: 10 steps of ε/4. */
export function defaultPgdSettings(epsilon: number): { steps: number; stepSize: number } {
  return { steps: PGD_DEFAULTS.steps, stepSize: epsilon / PGD_DEFAULTS.stepDivisor };
}

/** The default PGD settings in words ("10 steps of ε/4"), for descriptions and summaries. */
export const PGD_DEFAULTS_TEXT = `${PGD_DEFAULTS.steps} steps of ε/${PGD_DEFAULTS.stepDivisor}`;

/** Options of {@link pgd}. */
export interface PgdOptions extends AttackOptions {
  /** Gradient steps; default {@link PGD_DEFAULTS} (10). */
  steps?: number;
  /** Size of each signed-gradient step, in input units; default ε/4 ({@link PGD_DEFAULTS}). */
  stepSize?: number;
  /** Start from a uniform random point in the ε-ball (seeded); default false (start at x). */
  randomStart?: boolean;
  /** Seed of the random start; default 0. */
  seed?: number;
}

type Logits = (x: tf.Tensor) => tf.Tensor;

const logitsCache = new WeakMap<
  tf.LayersModel,
  { auto: Logits; raw: Logits; endsInSoftmax: boolean }
>();

/**
 * A function from inputs to logits for `model`, in inference mode (BatchNorm and Dropout as at
 * test time). The cross-entropy of an attack must come from logits: on clipped probabilities
 * its gradient vanishes where the model is confident, and FGSM silently weakens. Convolutions
 * and dense layers run as plain ops, so an input gradient does no filter-gradient work.
 */
export function logitsFunction(model: tf.LayersModel, output: ModelOutputKind = 'auto'): Logits {
  let cached = logitsCache.get(model);
  if (!cached) {
    const runner = new GraphRunner(model);
    cached = {
      auto: (x) => runner.logits(x),
      raw: (x) => runner.raw(x),
      endsInSoftmax: runner.endsInSoftmax(),
    };
    logitsCache.set(model, cached);
  }
  if (output === 'probabilities' && !cached.endsInSoftmax) {
    throw new Error(
      `output: 'probabilities' was given, but the model's output layer has no softmax to look ` +
        `behind; pass output: 'logits' if the model outputs logits`,
    );
  }
  return output === 'logits' ? cached.raw : cached.auto;
}

/** One-hot labels `[n, classes]` from one-hot or integer class ids. */
export function toOneHot(ys: tf.Tensor, classes: number): tf.Tensor2D {
  return tf.tidy(() => {
    if (ys.rank === 1) return tf.oneHot(ys.toInt(), classes).toFloat() as tf.Tensor2D;
    if (ys.rank === 2 && ys.shape[1] === classes) return ys.toFloat() as tf.Tensor2D;
    if (ys.rank === 2 && ys.shape[1] === 1) {
      return tf.oneHot(ys.reshape([-1]).toInt(), classes).toFloat() as tf.Tensor2D;
    }
    throw new Error(
      `labels must be class ids [n] or one-hot [n, ${classes}]; got shape [${ys.shape.join(', ')}]`,
    );
  });
}

/** Integer class ids `[n]` from one-hot or integer labels. */
export function toClassIds(ys: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    if (ys.rank === 1) return ys.toInt() as tf.Tensor1D;
    if (ys.rank === 2 && ys.shape[1] === 1) return ys.reshape([-1]).toInt() as tf.Tensor1D;
    if (ys.rank === 2) return ys.argMax(-1) as tf.Tensor1D;
    throw new Error(`labels must be rank 1 or 2; got shape [${ys.shape.join(', ')}]`);
  });
}

function classCount(model: tf.LayersModel): number {
  const shape = model.outputs[0].shape;
  const classes = shape[shape.length - 1];
  if (typeof classes !== 'number') throw new Error('the model output has no fixed class count');
  return classes;
}

/**
 * One FGSM step on a batch, with the predictions of the clean forward pass that the gradient
 * computation makes anyway (so a caller gets clean accuracy for free).
 * Returns `adversarial` (caller disposes) and `cleanPredictions` (class ids, caller disposes).
 */
export function fgsmBatch(
  logits: Logits,
  xs: tf.Tensor,
  oneHot: tf.Tensor,
  epsilon: number,
  clip?: [number, number],
): { adversarial: tf.Tensor; cleanPredictions: tf.Tensor1D } {
  let predictions: tf.Tensor1D | undefined;
  const adversarial = tf.tidy(() => {
    const gradient = tf.grad((x: tf.Tensor) => {
      const z = logits(x);
      predictions = tf.keep(z.argMax(-1) as tf.Tensor1D);
      // Sum, not mean: the sign is the same and small gradients do not underflow.
      return tf.losses.softmaxCrossEntropy(oneHot, z, undefined, 0, tf.Reduction.SUM);
    })(xs);
    const stepped = xs.add(gradient.sign().mul(epsilon));
    return clip ? stepped.clipByValue(clip[0], clip[1]) : stepped;
  });
  return { adversarial, cleanPredictions: predictions as tf.Tensor1D };
}

function checkEpsilon(epsilon: number): void {
  if (!(typeof epsilon === 'number' && Number.isFinite(epsilon) && epsilon > 0)) {
    throw new Error(`epsilon must be a finite number > 0 (in input units); got ${epsilon}`);
  }
}

function checkClip(clip: [number, number] | undefined): void {
  if (clip === undefined) return;
  if (!Array.isArray(clip) || clip.length !== 2 || !(clip[0] < clip[1])) {
    throw new Error(`clip must be [low, high] with low < high; got ${JSON.stringify(clip)}`);
  }
}

function batched(
  xs: tf.Tensor,
  ys: tf.Tensor,
  batchSize: number,
  run: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor,
): tf.Tensor {
  const n = xs.shape[0];
  if (ys.shape[0] !== n) {
    throw new Error(`xs has ${n} examples but ys has ${ys.shape[0]}`);
  }
  const parts: tf.Tensor[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const x = xs.slice(start, size);
    const y = ys.slice(start, size);
    parts.push(run(x, y));
    tf.dispose([x, y]);
  }
  if (parts.length === 1) return parts[0];
  const out = tf.concat(parts);
  tf.dispose(parts);
  return out;
}

/**
 * Fast Gradient Sign Method: x' = x + ε·sign(∇ₓ L(f(x), y)), L the cross-entropy computed
 * from logits, the model in inference mode. `ys` are one-hot or integer class ids.
 * Returns a new tensor (caller disposes).
 */
export function fgsm(
  model: tf.LayersModel,
  xs: tf.Tensor,
  ys: tf.Tensor,
  epsilon: number,
  options: AttackOptions = {},
): tf.Tensor {
  checkEpsilon(epsilon);
  checkClip(options.clip);
  const logits = logitsFunction(model, options.output);
  const classes = classCount(model);
  const oneHot = toOneHot(ys, classes);
  try {
    return batched(xs, oneHot, options.batchSize ?? 256, (x, y) => {
      const { adversarial, cleanPredictions } = fgsmBatch(logits, x, y, epsilon, options.clip);
      cleanPredictions.dispose();
      return adversarial;
    });
  } finally {
    oneHot.dispose();
  }
}

/**
 * PGD on one batch from `start` (default: `x` itself): `settings.steps` FGSM steps of
 * `settings.stepSize`, each projected into the ε-ball around `x` (and into `clip`). Returns a new
 * tensor (caller disposes).
 */
export function pgdBatch(
  logits: Logits,
  x: tf.Tensor,
  oneHot: tf.Tensor,
  epsilon: number,
  settings: { steps: number; stepSize: number; clip?: [number, number] },
  start?: tf.Tensor,
): tf.Tensor {
  const low = tf.sub(x, epsilon);
  const high = tf.add(x, epsilon);
  let current = (start ?? x).clone();
  for (let t = 0; t < settings.steps; t++) {
    const step = fgsmBatch(logits, current, oneHot, settings.stepSize);
    step.cleanPredictions.dispose();
    const next = tf.tidy(() => {
      const projected = tf.minimum(tf.maximum(step.adversarial, low), high);
      const clip = settings.clip;
      return clip ? projected.clipByValue(clip[0], clip[1]) : projected;
    });
    tf.dispose([step.adversarial, current]);
    current = next;
  }
  tf.dispose([low, high]);
  return current;
}

/**
 * Projected gradient descent in the L∞ ball of radius ε (Madry et al.): `steps` signed-gradient
 * steps of `stepSize` (default {@link PGD_DEFAULTS_TEXT}), each projected back into the ball (and into `clip` when given).
 * A stronger adversary than FGSM; beyond the paper. Returns a new tensor (caller disposes).
 */
export function pgd(
  model: tf.LayersModel,
  xs: tf.Tensor,
  ys: tf.Tensor,
  epsilon: number,
  options: PgdOptions = {},
): tf.Tensor {
  checkEpsilon(epsilon);
  checkClip(options.clip);
  const defaults = defaultPgdSettings(epsilon);
  const steps = options.steps ?? defaults.steps;
  const stepSize = options.stepSize ?? defaults.stepSize;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new Error(`pgd: steps must be an integer ≥ 1; got ${steps}`);
  }
  if (!(Number.isFinite(stepSize) && stepSize > 0)) {
    throw new Error(`pgd: stepSize must be a finite number > 0; got ${stepSize}`);
  }
  const logits = logitsFunction(model, options.output);
  const classes = classCount(model);
  const oneHot = toOneHot(ys, classes);
  let seed = options.seed ?? 0;
  try {
    return batched(xs, oneHot, options.batchSize ?? 256, (x, y) => {
      const start = options.randomStart
        ? tf.tidy(() => x.add(tf.randomUniform(x.shape, -epsilon, epsilon, 'float32', seed++)))
        : undefined;
      const out = pgdBatch(logits, x, y, epsilon, { steps, stepSize, clip: options.clip }, start);
      start?.dispose();
      return out;
    });
  } finally {
    oneHot.dispose();
  }
}
