import * as tf from '@tensorflow/tfjs';

/** The slice of tfjs-node's `NodeJSKernelBackend` used here (it is not exported typed). */
interface NativeBackend {
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_FLOAT: number;
    TF_ATTR_STRING: number;
    TF_ATTR_BOOL: number;
    TF_FLOAT: number;
  };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.Tensor;
  executeMultipleOutputs(
    name: string,
    attrs: unknown[],
    inputs: tf.TensorInfo[],
    outputs: number,
  ): tf.Tensor[];
}

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
 * TensorFlow's fused kernels (`FusedBatchNorm` forward, `FusedBatchNormGrad` backward: two native
 * calls instead of some forty element-wise tfjs ops per layer and step). The arithmetic is the
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
      const attrs = [
        { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
        { name: 'epsilon', type: binding.TF_ATTR_FLOAT, value: f.epsilon },
        { name: 'data_format', type: binding.TF_ATTR_STRING, value: 'NHWC' },
        { name: 'is_training', type: binding.TF_ATTR_BOOL, value: true },
      ];
      const empty = tf.tensor1d([]);
      let batchMean: tf.Tensor | undefined;
      let batchVariance: tf.Tensor | undefined;
      const normalise = tf.customGrad((input, gamma, beta, save) => {
        const [y, mean, variance, reserve1, reserve2] = backend.executeMultipleOutputs(
          'FusedBatchNorm',
          attrs,
          [input as tf.Tensor, gamma as tf.Tensor, beta as tf.Tensor, empty, empty],
          5,
        );
        batchMean = tf.keep(mean);
        batchVariance = tf.keep(variance); // Bessel-corrected, as TensorFlow returns it
        (save as tf.GradSaveFunc)([input as tf.Tensor, gamma as tf.Tensor, reserve1, reserve2]);
        return {
          value: y,
          gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
            const [dx, dGamma, dBeta, r3, r4] = backend.executeMultipleOutputs(
              'FusedBatchNormGrad',
              attrs,
              [singleTensor(dy), ...saved],
              5,
            );
            tf.dispose([r3, r4]);
            return [dx, dGamma, dBeta];
          },
        };
      });
      const y = normalise(x, f.gamma.read(), f.beta.read());
      const mean = batchMean as tf.Tensor;
      const corrected = batchVariance as tf.Tensor;
      const [batch, height, width] = x.shape as number[];
      const n = batch * height * width;
      // The moving statistics, as tfjs updates them (current − (current − batch)·(1 − momentum),
      // with the biased batch variance), run as native ops directly: they need no gradient, and
      // tfjs ops here would each be recorded on the training step's gradient tape.
      const typeAttr = [{ name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT }];
      const op = (name: string, a: tf.Tensor, b: tf.Tensor) =>
        backend.executeSingleOutput(name, typeAttr, [a, b]);
      const variance = n > 1 ? op('Mul', corrected, tf.scalar((n - 1) / n)) : corrected;
      const decay = tf.scalar(1 - f.momentum);
      for (const [variable, value] of [
        [f.movingMean, mean],
        [f.movingVariance, variance],
      ] as const) {
        const current = variable.read();
        variable.write(op('Sub', current, op('Mul', op('Sub', current, value), decay)));
      }
      tf.dispose([mean, corrected]);
      return y;
    });
  }
}
