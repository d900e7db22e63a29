import * as tf from '@tensorflow/tfjs';

/**
 * tfjs' gradient of `FusedBatchNorm` (tf.batchNorm, what BatchNormalization layers run), with
 * less work. tfjs' own computes `x − mean` and `dy · scale` (two passes over the whole
 * activation) before it knows which gradients are wanted, and for the input's gradient tiles
 * `1/√(variance + ε)` to the activation's full shape before multiplying (a third pass and a
 * full-size tensor). An attack's input gradient through a ResNet wants only the input's: here
 * every gradient is computed only when asked for, and the input's is one pass, `dy` times the
 * `[C]` vector `γ/√(variance + ε)` (as PyTorch computes it; tfjs multiplies by the two factors in
 * turn, so the values differ from tfjs' in float32 rounding). The other four gradients are
 * tfjs' values exactly.
 */

let original: tf.GradConfig | undefined;

/** The input gradient's `[C]` factor γ/√(variance + ε) (γ = 1 when absent), as this gradient takes it. */
export function inputGradientFactor(
  variance: tf.Tensor,
  varianceEpsilon: number,
  scale?: tf.Tensor | null,
): tf.Tensor {
  return tf.mul(tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon))), scale ?? tf.scalar(1));
}

function reductionAxes(meanShape: number[], xShape: number[]): number[] {
  return tf.backend_util.getReductionAxes(meanShape, xShape);
}

const leanBatchNormGradient: tf.GradConfig = {
  kernelName: 'FusedBatchNorm',
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) => {
    const grad = dy as tf.Tensor;
    const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
    const [x, mean, variance, scale] = saved;
    const scaleValue = scale == null ? tf.scalar(1) : scale;
    const axes = reductionAxes(mean.shape, x.shape);
    const perChannel = mean.rank === 1;
    const oneOverSqrtVariance = () => tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
    const reduce = (t: tf.Tensor) => tf.reshape(perChannel ? tf.sum(t, axes) : t, mean.shape);
    return {
      // One pass over dy: the [C] factor γ/√(variance + ε) first.
      x: () =>
        tf.reshape(tf.mul(grad, inputGradientFactor(variance, varianceEpsilon, scale)), x.shape),
      mean: () =>
        reduce(tf.mul(tf.mul(oneOverSqrtVariance(), tf.scalar(-1)), tf.mul(grad, scaleValue))),
      variance: () => {
        const r = oneOverSqrtVariance();
        const minusHalfRCube = tf.mul(tf.mul(tf.mul(r, r), r), tf.scalar(-0.5));
        return reduce(tf.mul(tf.mul(minusHalfRCube, tf.sub(x, mean)), tf.mul(grad, scaleValue)));
      },
      scale: () => reduce(tf.mul(grad, tf.mul(tf.sub(x, mean), oneOverSqrtVariance()))),
      offset: () => reduce(grad),
    };
  },
};

/** Registers the lean BatchNorm gradient over tfjs' own (any backend). Idempotent. */
export function registerLeanGradients(): void {
  if (original) return;
  original = tf.getGradient('FusedBatchNorm');
  tf.registerGradient(leanBatchNormGradient);
}

/** Restores tfjs' own BatchNorm gradient (for comparisons). */
export function unregisterLeanGradients(): void {
  if (!original) return;
  tf.registerGradient(original);
  original = undefined;
}

/** Whether the lean BatchNorm gradient is the one in effect (ops that repeat its values check). */
export function leanGradientsActive(): boolean {
  return tf.getGradient('FusedBatchNorm') === leanBatchNormGradient;
}
