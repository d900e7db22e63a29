import * as tf from '@tensorflow/tfjs';
import { timeIt } from '../lib/timing';

/** Multiply-accumulates of one example through a model's Conv2D and Dense layers. */
export interface LayerMacs {
  layer: string;
  macs: number;
}

/**
 * Counts, per example, the multiply-accumulates of every `Conv2D` (output pixels × output
 * channels × kernel height × width × input channels) and `Dense` (inputs × units) layer. Pooling,
 * activations and biases are not counted (they are memory-bound, not arithmetic-bound).
 */
export function countMacs(model: tf.LayersModel): LayerMacs[] {
  const rows: LayerMacs[] = [];
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    if (kind !== 'Conv2D' && kind !== 'Dense') continue;
    const kernel = layer.getWeights()[0];
    const out = layer.outputShape as number[];
    if (kind === 'Conv2D') {
      const [kh, kw, cin, cout] = kernel.shape;
      const [, h, w] = out;
      rows.push({ layer: layer.name, macs: h * w * cout * kh * kw * cin });
    } else {
      const [inputs, units] = kernel.shape;
      rows.push({ layer: layer.name, macs: inputs * units });
    }
  }
  return rows;
}

/** FLOPs of the bench's three tasks, from the forward FLOPs (2 per MAC) of one example. */
export interface TaskFlops {
  /** Forward FLOPs of one example. */
  forwardPerExample: number;
  /** One training epoch: forward + backward (weights and data gradients ≈ 2× forward). */
  trainEpoch: number;
  /** One evaluation pass: forward. */
  evaluate: number;
  /** One input-gradient pass: forward + data-gradient backward (≈ 1× forward). */
  inputGradient: number;
}

/** The FLOPs of an epoch over `trainSize` examples and of eval/gradient passes over `evalSize`. */
export function taskFlops(model: tf.LayersModel, trainSize: number, evalSize: number): TaskFlops {
  const forwardPerExample = 2 * countMacs(model).reduce((sum, row) => sum + row.macs, 0);
  return {
    forwardPerExample,
    trainEpoch: 3 * forwardPerExample * trainSize,
    evaluate: forwardPerExample * evalSize,
    inputGradient: 2 * forwardPerExample * evalSize,
  };
}

/**
 * The measured float32 matmul rate of the active backend, in GFLOP/s: the median over `repeats`
 * of the time of `n`×`n` by `n`×`n` products (2n³ FLOPs each). tfjs' Node backends run kernels
 * synchronously, so no read-back is timed.
 */
export async function matmulGflops(n: number, repeats: number): Promise<number> {
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  tf.matMul(a, b).dispose(); // warm-up
  const timing = await timeIt(() => tf.matMul(a, b).dispose(), { warmup: 1, repeats });
  tf.dispose([a, b]);
  return (2 * n ** 3) / timing.median / 1e9;
}
