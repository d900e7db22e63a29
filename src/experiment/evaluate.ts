import * as tf from '@tensorflow/tfjs';
import { fgsmBatch, logitsFunction, pgd, type ModelOutputKind } from '../analysis/attacks';
import type { TensorSet } from '../../datasets/mnist-builtin';

/** Options of {@link evaluateAccuracy}. */
export interface EvaluateOptions {
  /** FGSM radius ε in input units. */
  epsilon: number;
  /** Examples per pass; default 256. */
  batchSize?: number;
  /** Clip adversarial inputs; default none. */
  clip?: [number, number];
  /** How to read the model output; default `'auto'` (logits before a final softmax). */
  output?: ModelOutputKind;
}

/**
 * Top-1 accuracy of `model` on `set` (clean) and on its FGSM counterpart made against the model
 * itself (white-box), both as fractions. Inference mode; the weights are not touched.
 */
export async function evaluateAccuracy(
  model: tf.LayersModel,
  set: TensorSet,
  options: EvaluateOptions,
): Promise<{ clean: number; adversarial: number }> {
  const logits = logitsFunction(model, options.output ?? 'auto');
  const n = set.xs.shape[0];
  const batch = options.batchSize ?? 256;
  const counts: tf.Tensor[] = [];
  for (let start = 0; start < n; start += batch) {
    const size = Math.min(batch, n - start);
    let kept: tf.Tensor | undefined;
    counts.push(
      tf.tidy(() => {
        const x = set.xs.slice(start, size);
        const y = set.ys.slice(start, size);
        const { adversarial, cleanPredictions } = fgsmBatch(
          logits,
          x,
          y,
          options.epsilon,
          options.clip,
        );
        // fgsmBatch keeps the clean predictions out of every tidy: ours to dispose.
        kept = cleanPredictions;
        const labels = y.argMax(-1);
        const adversarialPredictions = logits(adversarial).argMax(-1);
        return tf.stack([
          cleanPredictions.equal(labels).sum(),
          adversarialPredictions.equal(labels).sum(),
        ]);
      }),
    );
    kept?.dispose();
  }
  const total = tf.tidy(() => tf.addN(counts));
  const [clean, adversarial] = Array.from(await total.data());
  tf.dispose([...counts, total]);
  return { clean: clean / n, adversarial: adversarial / n };
}

/** Options of {@link evaluatePgdAccuracy}. */
export interface PgdEvaluateOptions extends EvaluateOptions {
  /** PGD steps; default `PGD_DEFAULTS.steps` (10). */
  steps?: number;
  /** Size of each step; default ε/`PGD_DEFAULTS.stepDivisor` (ε/4). */
  stepSize?: number;
}

/**
 * Top-1 accuracy of `model` on PGD examples made against it (white-box, no random start, so
 * deterministic): a stronger check than FGSM. Inference mode; the weights are not touched.
 */
export function evaluatePgdAccuracy(
  model: tf.LayersModel,
  set: TensorSet,
  options: PgdEvaluateOptions,
): number {
  const adversarial = pgd(model, set.xs, set.ys, options.epsilon, {
    steps: options.steps,
    stepSize: options.stepSize,
    batchSize: options.batchSize,
    clip: options.clip,
    output: options.output,
  });
  const correct = tf.tidy(() => {
    const logits = logitsFunction(model, options.output ?? 'auto');
    const predictions = logits(adversarial).argMax(-1);
    return predictions.equal(set.ys.argMax(-1)).sum().dataSync()[0];
  });
  adversarial.dispose();
  return correct / set.xs.shape[0];
}
