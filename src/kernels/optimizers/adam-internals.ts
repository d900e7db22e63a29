import * as tf from '@tensorflow/tfjs';

/**
 * The fields of tfjs' `AdamOptimizer` that our fused updates read and write (protected or private
 * in its typings; tfjs 4.22's layout, which the backends that patch Adam pin).
 */
export interface AdamFields {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  incrementIterations(): void;
}

/** What `Optimizer.applyGradients` receives. */
export type Gradients = tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[];

/** The variable names of `gradients`, in order, and each one's gradient (null: not trained). */
export function gradientList(gradients: Gradients): {
  names: string[];
  gradientOf(name: string, i: number): tf.Tensor | null | undefined;
} {
  if (Array.isArray(gradients)) {
    return { names: gradients.map((g) => g.name), gradientOf: (_, i) => gradients[i].tensor };
  }
  return { names: Object.keys(gradients), gradientOf: (name) => gradients[name] };
}

/**
 * True when a fused float32 update can take every variable of `gradients`: each is registered
 * and float32, and its gradient (when given) is float32 of the variable's shape.
 */
export function float32Updatable(gradients: Gradients): boolean {
  const { names, gradientOf } = gradientList(gradients);
  const registered = tf.engine().registeredVariables;
  return names.every((name, i) => {
    const value = registered[name];
    const g = gradientOf(name, i);
    return (
      value !== undefined &&
      value.dtype === 'float32' &&
      (g == null || (g.dtype === 'float32' && tf.util.arraysEqual(g.shape, value.shape)))
    );
  });
}

/**
 * Creates the optimizer's `m` and `v` of variable `i` when it has none yet, as tfjs' Adam does
 * at the first step (zeros, not trainable, named `<variable>/m` and `<variable>/v`); returns them.
 */
export function ensureMoments(
  f: AdamFields,
  name: string,
  i: number,
  value: tf.Variable,
): [tf.Variable, tf.Variable] {
  if (f.accumulatedFirstMoment[i] == null) {
    f.accumulatedFirstMoment[i] = {
      originalName: `${name}/m`,
      variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
    };
  }
  if (f.accumulatedSecondMoment[i] == null) {
    f.accumulatedSecondMoment[i] = {
      originalName: `${name}/v`,
      variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
    };
  }
  return [f.accumulatedFirstMoment[i].variable, f.accumulatedSecondMoment[i].variable];
}

/** tfjs' end of an Adam step: `β1ᵗ` and `β2ᵗ` advanced, the iteration counted. */
export function finishAdamStep(f: AdamFields): void {
  tf.tidy(() => {
    f.accBeta1.assign(tf.mul(f.accBeta1, f.beta1));
    f.accBeta2.assign(tf.mul(f.accBeta2, f.beta2));
  });
  f.incrementIterations();
}
