import * as tf from '@tensorflow/tfjs';
import { adversarialBatches, fgsm, pgd, replacedRows } from '../index';

function classifier(): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [6],
        units: 8,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({
        units: 3,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
  return model;
}

const N = 16;
const BATCH = 8;
const xsAll = tf.randomNormal([N, 6], 0, 1, 'float32', 7);
const ysAll = tf
  .oneHot(
    tf.tensor1d(
      Array.from({ length: N }, (_, i) => i % 3),
      'int32',
    ),
    3,
  )
  .toFloat();

function data(): tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }> {
  return tf.data
    .zip({ xs: tf.data.array(tf.unstack(xsAll)), ys: tf.data.array(tf.unstack(ysAll)) })
    .batch(BATCH) as unknown as tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>;
}

async function firstBatches(ds: tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>) {
  const out: { xs: number[][]; ys: number[][] }[] = [];
  await ds.forEachAsync((b) => {
    out.push({ xs: b.xs.arraySync() as number[][], ys: b.ys.arraySync() as number[][] });
  });
  return out;
}

describe('adversarialBatches', () => {
  it('replaces round(ratio · n) rows with FGSM examples made against the current weights', async () => {
    const model = classifier();
    const epsilon = 0.2;
    const ds = adversarialBatches(model, data(), { epsilon, ratio: 0.5, seed: 3 });
    const check = async (pass: number) => {
      const batches = await firstBatches(ds);
      expect(batches).toHaveLength(N / BATCH);
      batches.forEach((batch, b) => {
        const rows = replacedRows(BATCH, 4, 3, pass, b);
        const clean = xsAll.slice(b * BATCH, BATCH);
        const labels = ysAll.slice(b * BATCH, BATCH);
        const index = tf.tensor1d(rows, 'int32');
        const expected = fgsm(
          model,
          tf.gather(clean, index),
          tf.gather(labels, index),
          epsilon,
        ).arraySync() as number[][];
        const cleanRows = clean.arraySync() as number[][];
        batch.xs.forEach((row, i) => {
          const j = rows.indexOf(i);
          const want = j >= 0 ? expected[j] : cleanRows[i];
          row.forEach((v, k) => expect(v).toBeCloseTo(want[k], 5));
          if (j >= 0) expect(row.some((v, k) => Math.abs(v - cleanRows[i][k]) > 0.1)).toBe(true);
        });
        expect(batch.ys).toEqual(labels.arraySync());
      });
      return batches;
    };
    const before = await check(0);
    // One training step changes the weights: the next pass attacks the new model.
    await model.fit(xsAll, ysAll, { epochs: 1, batchSize: N, verbose: 0 });
    const after = await check(1);
    expect(after[0].xs).not.toEqual(before[0].xs);
  });

  it('respects the ratio and picks the same rows for the same seed', async () => {
    for (const [ratio, count] of [
      [0, 0],
      [0.25, 2],
      [0.5, 4],
      [1, 8],
    ] as const) {
      expect(replacedRows(BATCH, count, 0, 0, 0)).toHaveLength(count);
      const model = classifier();
      const batches = await firstBatches(
        adversarialBatches(model, data(), { epsilon: 0.3, ratio }),
      );
      const clean = xsAll.arraySync() as number[][];
      const changed = batches[0].xs.filter((row, i) =>
        row.some((v, k) => v !== clean[i][k]),
      ).length;
      expect(changed).toBe(count);
    }
    const a = await firstBatches(
      adversarialBatches(classifier(), data(), { epsilon: 0.3, seed: 5 }),
    );
    const b = await firstBatches(
      adversarialBatches(classifier(), data(), { epsilon: 0.3, seed: 5 }),
    );
    const c = await firstBatches(
      adversarialBatches(classifier(), data(), { epsilon: 0.3, seed: 6 }),
    );
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(replacedRows(100, 50, 1, 0, 0)).not.toEqual(replacedRows(100, 50, 1, 0, 1));
  });

  it('makes PGD examples with PGD', async () => {
    const model = classifier();
    const [batch] = await firstBatches(
      adversarialBatches(model, data(), {
        epsilon: 0.3,
        ratio: 1,
        attack: 'pgd',
        pgd: { steps: 3 },
      }),
    );
    const expected = pgd(model, xsAll.slice(0, BATCH), ysAll.slice(0, BATCH), 0.3, {
      steps: 3,
      stepSize: 0.075,
    });
    const want = expected.arraySync() as number[][];
    batch.xs.forEach((row, i) => row.forEach((v, k) => expect(v).toBeCloseTo(want[i][k], 5)));
  });

  it('trains with fitDataset without growing the tensor count', async () => {
    const model = classifier();
    const ds = adversarialBatches(model, data(), { epsilon: 0.2 });
    await model.fitDataset(ds, { epochs: 1, verbose: 0 });
    const start = tf.memory().numTensors;
    await model.fitDataset(ds, { epochs: 3, verbose: 0 });
    expect(tf.memory().numTensors).toBe(start);
  });

  it('rejects options it cannot mean, naming them', () => {
    const model = classifier();
    expect(() => adversarialBatches(model, data(), { epsilon: 0 })).toThrow(
      /epsilon must be a finite number > 0/,
    );
    expect(() => adversarialBatches(model, data(), { epsilon: 0.1, ratio: 1.5 })).toThrow(
      /ratio must be a number in \[0, 1\]; got 1.5/,
    );
    expect(() =>
      adversarialBatches(model, data(), { epsilon: 0.1, attack: 'cw' as 'fgsm' }),
    ).toThrow(/attack must be 'fgsm' or 'pgd'; got "cw"/);
  });
});
