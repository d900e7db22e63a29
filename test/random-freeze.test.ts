import * as tf from '@tensorflow/tfjs';
import { RandomFreezeCallback } from '../index';

function mlp(): tf.LayersModel {
  const model = tf.sequential();
  ['d1', 'd2', 'd3', 'd4'].forEach((name, i) =>
    model.add(
      tf.layers.dense({
        name,
        units: i === 3 ? 3 : 6,
        activation: i === 3 ? 'softmax' : 'relu',
        ...(i === 0 ? { inputShape: [5] } : {}),
        kernelInitializer: tf.initializers.glorotUniform({ seed: i + 1 }),
      }),
    ),
  );
  model.compile({ optimizer: tf.train.adam(0.05), loss: 'categoricalCrossentropy' });
  return model;
}

const xs = tf.randomNormal([32, 5], 0, 1, 'float32', 3);
const ys = tf
  .oneHot(
    tf.tensor1d(
      Array.from({ length: 32 }, (_, i) => i % 3),
      'int32',
    ),
    3,
  )
  .toFloat();
const LAYERS = ['d1', 'd2', 'd3', 'd4'];

/** Records, per epoch, which layers' kernels changed during it. */
class ChangeRecorder extends tf.Callback {
  changed: string[][] = [];
  private before: Float32Array[] = [];
  override async onEpochBegin(): Promise<void> {
    const model = this.model as tf.LayersModel;
    this.before = LAYERS.map((l) => model.getLayer(l).getWeights()[0].dataSync() as Float32Array);
  }
  override async onEpochEnd(): Promise<void> {
    const model = this.model as tf.LayersModel;
    this.changed.push(
      LAYERS.filter((l, i) => {
        const now = model.getLayer(l).getWeights()[0].dataSync();
        return now.some((v, k) => v !== this.before[i][k]);
      }),
    );
  }
}

describe('RandomFreezeCallback', () => {
  const schedule = [
    { epoch: -1, count: 2 },
    { epoch: 0, count: 1 },
    { epoch: 1, count: 3 },
  ];

  it('freezes as many layers as scheduled, the same ones for the same seed, and restores them', async () => {
    const model = mlp();
    const control = new RandomFreezeCallback({ layers: LAYERS, schedule, seed: 4 });
    const recorder = new ChangeRecorder();
    const history = await model.fit(xs, ys, {
      epochs: 3,
      batchSize: 8,
      verbose: 0,
      callbacks: [control, recorder],
    });
    const chosen = [-1, 0, 1].map((e, i) => control.choose(e, schedule[i].count));
    expect(chosen.map((c) => c.length)).toEqual([2, 1, 3]);
    // epoch e trains with the layers chosen at the refresh before it frozen
    recorder.changed.forEach((changed, epoch) => {
      expect(changed.sort()).toEqual(LAYERS.filter((l) => !chosen[epoch].includes(l)));
    });
    expect(history.history.frozen_layers).toEqual([1, 3, 3]);
    expect(model.trainableWeights.length).toBe(8); // every flag restored
    const again = new RandomFreezeCallback({ layers: LAYERS, schedule, seed: 4 });
    expect([-1, 0, 1].map((e, i) => again.choose(e, schedule[i].count))).toEqual(chosen);
    const seeds = [5, 6, 7, 8].map((seed) =>
      new RandomFreezeCallback({ layers: LAYERS, schedule, seed }).choose(-1, 2).join(),
    );
    expect(new Set([chosen[0].join(), ...seeds]).size).toBeGreaterThan(1);
  });

  it('never freezes every trainable weight, and rejects a schedule it cannot follow', async () => {
    const model = mlp();
    const all = new RandomFreezeCallback({ layers: LAYERS, schedule: [{ epoch: -1, count: 4 }] });
    const recorder = new ChangeRecorder();
    await model.fit(xs, ys, { epochs: 1, batchSize: 8, verbose: 0, callbacks: [all, recorder] });
    expect(recorder.changed[0]).toEqual(LAYERS);
    expect(
      () => new RandomFreezeCallback({ layers: LAYERS, schedule: [{ epoch: 0, count: 5 }] }),
    ).toThrow(/option 'schedule' must be a list of \{ epoch ≥ −1, count in 0…4 \}/);
    expect(() => new RandomFreezeCallback({ layers: [], schedule: [] })).toThrow(/option 'layers'/);
    const wrong = new RandomFreezeCallback({ layers: ['nope'], schedule: [] });
    await expect(mlp().fit(xs, ys, { epochs: 1, verbose: 0, callbacks: [wrong] })).rejects.toThrow(
      /the model has no layer 'nope'/,
    );
  });

  it('restores the flags when the fit throws, through track()', async () => {
    const model = mlp();
    const control = new RandomFreezeCallback({
      layers: LAYERS,
      schedule: [{ epoch: -1, count: 2 }],
    });
    const failing = new (class extends tf.Callback {
      override async onEpochEnd(): Promise<void> {
        throw new Error('boom');
      }
    })();
    const fit = model.fit(xs, ys, { epochs: 2, verbose: 0, callbacks: [control, failing] });
    await expect(control.track(fit)).rejects.toThrow('boom');
    expect(model.trainableWeights.length).toBe(8);
  });
});
