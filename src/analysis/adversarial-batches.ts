import * as tf from '@tensorflow/tfjs';
import { mixSeeds, seededSample } from '../util/random';
import { fgsm, pgd, type ModelOutputKind } from './attacks';
import type { AttackId } from './types';

/** Options of {@link adversarialBatches}. */
export interface AdversarialBatchesOptions {
  /** The attack that makes the replacement examples; default `'fgsm'`. */
  attack?: AttackId;
  /** Radius of the attack in input units (required). */
  epsilon: number;
  /**
   * Share of each batch replaced by attack examples, in [0, 1]; default 0.5 (Goodfellow et al.
   * 2015's mixed objective). A batch of n examples gets round(ratio · n) of them.
   */
  ratio?: number;
  /** Clip attack examples to this input range; default none. */
  clip?: [number, number];
  /** PGD's settings (with `attack: 'pgd'`); defaults `PGD_DEFAULTS` (10 steps of ε/4), no random start. */
  pgd?: { steps?: number; stepSize?: number; randomStart?: boolean };
  /** How to read the model's output for the attack's loss; default `'auto'`. */
  output?: ModelOutputKind;
  /** Seed of which examples of a batch are replaced; default 0. */
  seed?: number;
}

/** One batch as `model.fitDataset` takes it (a type alias, so it is a tfjs `TensorContainer`). */
export type Batch = {
  xs: tf.Tensor;
  ys: tf.Tensor;
};

function check(
  options: AdversarialBatchesOptions,
): Required<Pick<AdversarialBatchesOptions, 'attack' | 'ratio' | 'seed'>> {
  const { attack = 'fgsm', ratio = 0.5, seed = 0, epsilon } = options;
  if (attack !== 'fgsm' && attack !== 'pgd') {
    throw new Error(
      `adversarialBatches: attack must be 'fgsm' or 'pgd'; got ${JSON.stringify(attack)}`,
    );
  }
  if (!(typeof ratio === 'number' && ratio >= 0 && ratio <= 1)) {
    throw new Error(
      `adversarialBatches: ratio must be a number in [0, 1]; got ${JSON.stringify(ratio)}`,
    );
  }
  if (!(typeof epsilon === 'number' && Number.isFinite(epsilon) && epsilon > 0)) {
    throw new Error(
      `adversarialBatches: epsilon must be a finite number > 0 (in input units); got ${JSON.stringify(epsilon)}`,
    );
  }
  if (!Number.isInteger(seed)) {
    throw new Error(`adversarialBatches: seed must be an integer; got ${JSON.stringify(seed)}`);
  }
  return { attack, ratio, seed };
}

/**
 * Which rows of a batch of `n` are replaced: `count` distinct indices, ascending, the same for the
 * same (seed, pass, batch).
 */
export function replacedRows(
  n: number,
  count: number,
  seed: number,
  pass: number,
  batch: number,
): number[] {
  return seededSample(n, count, mixSeeds(seed, pass, batch));
}

/**
 * Adversarial training data, tfjs-data style: a dataset whose every batch has `ratio` of its
 * examples replaced by attack examples made against the model's **current** weights (each batch
 * is attacked when it is drawn, so after the previous training step). The attack runs with the
 * model in inference mode (BatchNorm and Dropout as at test time); `fitDataset`'s training step
 * that follows runs in training mode as usual. Use it as `model.fitDataset(adversarialBatches(
 * model, data, { epsilon }), …)`. Batches must be `{ xs, ys }` (ys one-hot or class ids).
 *
 * Which rows are replaced is seeded by (`seed`, pass over the data, batch index), so two runs
 * with the same seed and data order see the same batches. Anchors: Goodfellow et al. 2015 (FGSM,
 * mixed objective), Madry et al. 2018 (PGD).
 */
export function adversarialBatches(
  model: tf.LayersModel,
  dataset: tf.data.Dataset<Batch>,
  options: AdversarialBatchesOptions,
): tf.data.Dataset<Batch> {
  const { attack, ratio, seed } = check(options);
  const attackRows = (xs: tf.Tensor, ys: tf.Tensor): tf.Tensor => {
    const settings = { clip: options.clip, output: options.output, batchSize: xs.shape[0] };
    if (attack === 'fgsm') return fgsm(model, xs, ys, options.epsilon, settings);
    return pgd(model, xs, ys, options.epsilon, {
      ...settings,
      steps: options.pgd?.steps,
      stepSize: options.pgd?.stepSize,
      randomStart: options.pgd?.randomStart ?? false,
      seed,
    });
  };
  let passes = 0;
  return tf.data.generator(async function* () {
    const pass = passes++;
    const iterator = await dataset.iterator();
    for (let batch = 0; ; batch++) {
      const next = await iterator.next();
      if (next.done) return;
      yield mixBatch(
        next.value,
        ratio,
        (n, count) => replacedRows(n, count, seed, pass, batch),
        attackRows,
      );
    }
  });
}

/** The batch with the chosen rows replaced by attack examples; disposes the input batch. */
function mixBatch(
  value: Batch,
  ratio: number,
  choose: (n: number, count: number) => number[],
  attackRows: (xs: tf.Tensor, ys: tf.Tensor) => tf.Tensor,
): Batch {
  const { xs, ys } = value;
  if (!(xs instanceof tf.Tensor) || !(ys instanceof tf.Tensor)) {
    throw new Error('adversarialBatches: each batch must be { xs: Tensor, ys: Tensor }');
  }
  const n = xs.shape[0];
  const rows = choose(n, Math.round(ratio * n));
  if (rows.length === 0) return value;
  const mixed = tf.tidy(() => {
    const index = tf.tensor1d(rows, 'int32');
    const adversarial = attackRows(tf.gather(xs, index), tf.gather(ys, index));
    // Row i comes from xs (i) or, when replaced, from the j-th attack example (n + j).
    const source = Array.from({ length: n }, (_, i) => i);
    rows.forEach((row, j) => (source[row] = n + j));
    return tf.gather(tf.concat([xs, adversarial]), tf.tensor1d(source, 'int32'));
  });
  xs.dispose();
  return { xs: mixed, ys };
}
