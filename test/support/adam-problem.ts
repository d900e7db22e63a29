import * as tf from '@tensorflow/tfjs';

/** A seeded Adam problem's options (see {@link adamProblem}). */
export interface AdamOptions {
  lr?: number;
  epsilon?: number;
  /** Index of a variable left out of the gradient map (tfjs skips its update). */
  nullGradient?: number;
  /** Index of a variable whose gradient is all zeros (m = v = 0: ε alone in the divisor). */
  zeroGradient?: number;
  /** Index of a variable whose gradients have NaN and ±∞ entries. */
  specialGradient?: number;
}

/** What {@link trainAdam} returns: the variables' values, the iteration count and the moments. */
export interface AdamTrained {
  values: number[][];
  iterations: number;
  moments: { name: string; values: number[] }[];
}

/** Seeded initial values and per-step gradients over six orders of magnitude, as host arrays. */
export function adamProblem(shapes: number[][], steps: number, options: AdamOptions) {
  const init = shapes.map((shape, i) =>
    tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', 10 + i).dataSync()),
  );
  const grads = Array.from({ length: steps }, (_, s) =>
    shapes.map((shape, i) => {
      const g = tf.tidy(() =>
        i === options.zeroGradient
          ? tf.zeros(shape).dataSync()
          : tf
              .mul(tf.randomNormal(shape, 0, 1, 'float32', 1 + 100 * s + i), 10 ** -(i % 6))
              .dataSync(),
      ) as Float32Array;
      if (i === options.specialGradient && g.length >= 3) {
        g[0] = NaN;
        g[1] = Infinity;
        g[2] = -Infinity;
      }
      return g;
    }),
  );
  return { init, grads };
}

/** Trains {@link adamProblem} with `tf.train.adam` on the active backend, whatever is patched. */
export async function trainAdam(
  shapes: number[][],
  steps: number,
  options: AdamOptions,
): Promise<AdamTrained> {
  const { init, grads } = adamProblem(shapes, steps, options);
  const variables = init.map((values, i) =>
    tf.tidy(() => tf.variable(tf.tensor(values, shapes[i]))),
  );
  const optimizer = tf.train.adam(options.lr ?? 1e-3, 0.9, 0.999, options.epsilon);
  for (let s = 0; s < steps; s++) {
    const gradients = variables.map((v, i) => ({
      name: v.name,
      tensor: tf.tensor(grads[s][i], shapes[i]),
    }));
    const kept = gradients.filter((_, i) => i !== options.nullGradient);
    optimizer.applyGradients(
      options.nullGradient === undefined
        ? gradients
        : // A map of plain tensors, as tfjs-layers hands them (its typing asks for variables).
          (Object.fromEntries(kept.map((g) => [g.name, g.tensor])) as Record<string, tf.Variable>),
    );
    tf.dispose(gradients.map((g) => g.tensor));
  }
  const weights = await optimizer.getWeights();
  const result = {
    values: variables.map((v) => Array.from(v.dataSync())),
    iterations: weights[0].tensor.dataSync()[0],
    moments: weights.slice(1).map((w) => ({
      name: w.name.replace(/^\d+/, ''),
      values: Array.from(w.tensor.dataSync()),
    })),
  };
  weights[0].tensor.dispose();
  optimizer.dispose();
  tf.dispose(variables);
  return result;
}
