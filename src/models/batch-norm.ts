import * as tf from '@tensorflow/tfjs';
import type { NativeBackend } from '../kernels/native/native-backend';

/** The fields of tfjs-layers' `BatchNormalization` this layer reads (private in its typings). */
interface BatchNormFields {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

type BatchNormArgs = Parameters<typeof tf.layers.batchNormalization>[0];
type BatchNormLayer = ReturnType<typeof tf.layers.batchNormalization>;

/** tfjs-layers' `BatchNormalization` class (not exported by name; taken from an instance). */
const BatchNormalizationBase = Object.getPrototypeOf(tf.layers.batchNormalization())
  .constructor as new (args?: BatchNormArgs) => BatchNormLayer;

function singleTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

/**
 * tfjs-layers' `BatchNormalization`, whose training step on the native `tensorflow` backend runs
 * TensorFlow's fused kernels (`FusedBatchNormV3` forward, which also updates the moving mean,
 * `FusedBatchNormGradV3` backward: two native calls, three more for the moving variance, instead
 * of some forty element-wise tfjs ops per layer and step). The arithmetic is the
 * same: batch statistics normalise the batch; the moving mean and (biased) variance are updated
 * with `momentum` as tfjs does. Inference, other backends and other layouts use the inherited
 * code. Its class name stays `BatchNormalization`, so saved models load as the standard layer.
 */
export class NativeBatchNormalization extends BatchNormalizationBase {
  override call(
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: Record<string, unknown>,
  ): tf.Tensor | tf.Tensor[] {
    const x = singleTensor(inputs);
    const f = this as unknown as BatchNormFields;
    const native =
      kwargs?.training === true &&
      tf.getBackend() === 'tensorflow' &&
      x.rank === 4 &&
      x.dtype === 'float32' &&
      (f.axis === -1 || f.axis === 3) &&
      f.center &&
      f.scale;
    if (!native) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const backend = tf.backend() as unknown as NativeBackend;
      const { binding } = backend;
      const [batch, height, width, channels] = x.shape as number[];
      // oneDNN's batch norm (which TensorFlow runs for 4-D inputs) is slow when the channel
      // count is not a multiple of 4 (ShuffleNet V2's 58: 0.56 ms forward and 0.64 ms backward
      // on [100, 4, 4, 58], against 0.17 and 0.14 ms on [100, 2, 2, 116]); TensorFlow's own
      // (Eigen) kernel, which it runs for 5-D inputs, takes 0.34 and 0.54 ms there. Such inputs
      // go through as [N, H, W, 1, C] (NDHWC): the same statistics and values to float32
      // rounding.
      const fiveD = channels % 4 !== 0;
      const to5 = (t: tf.Tensor) =>
        fiveD ? tf.reshape(t, [batch, height, width, 1, channels]) : t;
      const to4 = (t: tf.Tensor) => (fiveD ? tf.reshape(t, x.shape) : t);
      const type = { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT };
      const common = [
        type,
        { name: 'U', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
        { name: 'epsilon', type: binding.TF_ATTR_FLOAT, value: f.epsilon },
        { name: 'data_format', type: binding.TF_ATTR_STRING, value: fiveD ? 'NDHWC' : 'NHWC' },
        { name: 'is_training', type: binding.TF_ATTR_BOOL, value: true },
      ];
      const decay = 1 - f.momentum;
      // The moving mean is updated inside the forward kernel (`exponential_avg_factor`:
      // current·(1 − f) + batch·f, tfjs' current − (current − batch)·f to float32 rounding);
      // read here, outside the gradient's inputs (it needs none).
      const forwardAttrs = [
        ...common,
        { name: 'exponential_avg_factor', type: binding.TF_ATTR_FLOAT, value: decay },
      ];
      const movingMean = f.movingMean.read();
      const movingVariance = f.movingVariance.read();
      let newMean: tf.Tensor | undefined;
      let batchVariance: tf.Tensor | undefined;
      const normalise = tf.customGrad((input, gamma, beta, save) => {
        const input5 = to5(input as tf.Tensor);
        const [y, mean, corrected, reserve1, reserve2, reserve3] = backend.executeMultipleOutputs(
          'FusedBatchNormV3',
          forwardAttrs,
          [input5, gamma as tf.Tensor, beta as tf.Tensor, movingMean, movingVariance],
          6,
        );
        newMean = tf.keep(mean);
        // The saved batch variance is the biased one (what tfjs' moving variance averages);
        // the running variance TensorFlow returns is Bessel-corrected: not used.
        batchVariance = tf.keep(reserve2);
        corrected.dispose();
        (save as tf.GradSaveFunc)([input5, gamma as tf.Tensor, reserve1, reserve2, reserve3]);
        return {
          value: to4(y),
          gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
            const [dx, dGamma, dBeta, r4, r5] = backend.executeMultipleOutputs(
              'FusedBatchNormGradV3',
              common,
              [to5(singleTensor(dy)), ...saved],
              5,
            );
            tf.dispose([r4, r5]);
            return [to4(dx), dGamma, dBeta];
          },
        };
      });
      const y = normalise(x, f.gamma.read(), f.beta.read());
      f.movingMean.write(newMean as tf.Tensor);
      // The moving variance, as tfjs updates it (current − (current − batch)·(1 − momentum), with
      // the biased batch variance), run as native ops directly: it needs no gradient, and tfjs
      // ops here would each be recorded on the training step's gradient tape.
      const op = (name: string, a: tf.Tensor, b: tf.Tensor) =>
        backend.executeSingleOutput(name, [type], [a, b]);
      const variance = batchVariance as tf.Tensor;
      f.movingVariance.write(
        op('Sub', movingVariance, op('Mul', op('Sub', movingVariance, variance), tf.scalar(decay))),
      );
      tf.dispose([newMean as tf.Tensor, variance]);
      return y;
    });
  }
}
