import * as tf from '@tensorflow/tfjs';
import { SelectiveRetrainCallback, SynapticFilterCallback } from '../callbacks';
import type { AnalysisReport, Label } from '../src/analysis';

const N = 64;

function data(seed = 1): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  return tf.tidy(() => {
    const xs = tf.randomNormal([N, 8, 8, 1], 0, 1, 'float32', seed) as tf.Tensor4D;
    // A learnable rule: the class is whether the upper half is brighter than the lower half.
    const top = xs.slice([0, 0, 0, 0], [N, 4, 8, 1]).sum([1, 2, 3]);
    const bottom = xs.slice([0, 4, 0, 0], [N, 4, 8, 1]).sum([1, 2, 3]);
    const ys = tf.oneHot(top.greater(bottom).toInt(), 2).toFloat() as tf.Tensor2D;
    return { xs, ys };
  });
}

function model(options: { batchNorm?: boolean; userFrozen?: boolean } = {}): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
  const input = tf.input({ shape: [8, 8, 1] });
  let h = tf.layers
    .conv2d({
      filters: 4,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: init(1),
      name: 'conv1',
    })
    .apply(input);
  if (options.batchNorm) h = tf.layers.batchNormalization({ name: 'bn' }).apply(h);
  h = tf.layers
    .conv2d({
      filters: 4,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: init(2),
      name: 'conv2',
    })
    .apply(h);
  h = tf.layers.flatten().apply(h);
  const user = tf.layers.dense({
    units: 8,
    activation: 'relu',
    kernelInitializer: init(3),
    name: 'user_dense',
  });
  h = user.apply(h);
  if (options.userFrozen) user.trainable = false;
  const out = tf.layers
    .dense({ units: 2, activation: 'softmax', kernelInitializer: init(4), name: 'head' })
    .apply(h);
  return tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
}

/** A layer's weights as bytes, in name order (tfjs lists a frozen weight after the others). */
function bytes(m: tf.LayersModel, layer: string): Buffer[] {
  return [...m.getLayer(layer).weights]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((w) => Buffer.from(w.read().dataSync().slice().buffer));
}

function same(a: Buffer[], b: Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => Buffer.compare(x, b[i]) === 0);
}

/**
 * Rewrites a report's labels, so a test decides which kernels count as fragile (by layer name:
 * tfjs makes weight names unique per process, e.g. `conv1/kernel_3`).
 */
function setLabels(report: AnalysisReport, fragileLayers: string[]): void {
  for (const p of report.parameters) {
    const label: Label = fragileLayers.includes(p.layer) ? 'fragile' : 'robust';
    for (const r of Object.values(p.filters))
      if (r) r.labels = { clean: label, adversarial: label, difference: label };
  }
}

const analysisOptions = { epsilon: 0.1, steps: 3, filters: ['highpass' as const], batchSize: 64 };

describe('SynapticFilterCallback', () => {
  it('analyses every `every`-th epoch, keeps reports, adds summaries to the logs, leaves weights as they were', async () => {
    const m = model();
    m.compile({
      optimizer: tf.train.adam(0.01),
      loss: 'categoricalCrossentropy',
      metrics: ['accuracy'],
    });
    const d = data();
    const before: Buffer[][] = [];
    const after: Buffer[][] = [];
    const capture = (into: Buffer[][]) =>
      new (class extends tf.Callback {
        override async onEpochEnd() {
          into.push(m.weights.map((w) => Buffer.from(w.read().dataSync().slice().buffer)));
        }
      })();
    const seen: number[] = [];
    const analysis = new SynapticFilterCallback({
      data: d,
      every: 2,
      atStart: true,
      ...analysisOptions,
      onAnalysis: (r) => {
        seen.push(r.epoch as number);
      },
    });
    const history = await m.fit(d.xs, d.ys, {
      epochs: 4,
      batchSize: 16,
      verbose: 0,
      callbacks: [capture(before), analysis, capture(after)],
    });
    expect(seen).toEqual([-1, 1, 3]);
    expect(analysis.reports.map((r) => r.epoch)).toEqual([-1, 1, 3]);
    expect(analysis.latest?.epoch).toBe(3);
    expect(history.history.fragile_adversarial).toHaveLength(2);
    expect(history.history.psi_adversarial_mean).toHaveLength(2);
    const counts = ['fragile', 'robust', 'antifragile'].map(
      (l) => history.history[`${l}_adversarial`][1] as number,
    );
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4); // 4 kernels × 1 filter
    before.forEach((epoch, i) =>
      epoch.forEach((w, j) => expect(Buffer.compare(w, after[i][j])).toBe(0)),
    );
    const inv = analysis.invariance();
    expect(inv.reports).toBe(3);
    const state = analysis.getState();
    const restored = new SynapticFilterCallback({ data: d, ...analysisOptions });
    restored.setState(state);
    expect(restored.reports).toEqual(analysis.reports);
    tf.dispose([d.xs, d.ys]);
    m.dispose();
  });

  it('rejects bad options at construction and bad data at train begin, before any training', async () => {
    const d = data();
    expect(() => new SynapticFilterCallback({ data: d, epsilon: -1 })).toThrow(
      /option 'epsilon' must be > 0; got -1/,
    );
    expect(() => new SynapticFilterCallback({ data: d, epsilon: 0.1, every: 0 })).toThrow(
      /'every' must be an integer ≥ 1; got 0/,
    );
    expect(
      () => new SynapticFilterCallback({ data: d, epsilon: 0.1, filters: ['notch' as never] }),
    ).toThrow(/filters.0/);
    expect(() => new SynapticFilterCallback({ epsilon: 0.1 } as never)).toThrow(/'data' must be/);
    const m = model();
    m.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
    const wrong = tf.zeros([4, 9, 9, 1]);
    let batches = 0;
    const counter = new (class extends tf.Callback {
      override async onBatchEnd() {
        batches++;
      }
    })();
    const analysis = new SynapticFilterCallback({
      data: { xs: wrong, ys: d.ys.slice(0, 4) },
      epsilon: 0.1,
    });
    await expect(
      m.fit(d.xs, d.ys, { epochs: 1, verbose: 0, callbacks: [analysis, counter] }),
    ).rejects.toThrow(/data.xs has shape \[4, 9, 9, 1\] but the model expects \[n, 8, 8, 1\]/);
    expect(batches).toBe(0);
    tf.dispose([d.xs, d.ys, wrong]);
    m.dispose();
  });

  it('an analysis that throws stops training with that error and restores the epoch weights', async () => {
    const m = model();
    m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const d = data();
    let atEpochEnd: Buffer[] = [];
    const capture = new (class extends tf.Callback {
      override async onEpochEnd() {
        atEpochEnd = m.weights.map((w) => Buffer.from(w.read().dataSync().slice().buffer));
      }
    })();
    let calls = 0;
    const analysis = new SynapticFilterCallback({
      data: d,
      ...analysisOptions,
      onProgress: () => {
        if (++calls === 2) throw new Error('disk full while analysing');
      },
    });
    let epochsBegun = 0;
    const counter = new (class extends tf.Callback {
      override async onEpochBegin() {
        epochsBegun++;
      }
    })();
    await expect(
      m.fit(d.xs, d.ys, {
        epochs: 3,
        batchSize: 16,
        verbose: 0,
        callbacks: [counter, capture, analysis],
      }),
    ).rejects.toThrow('disk full while analysing');
    expect(epochsBegun).toBe(1);
    const now = m.weights.map((w) => Buffer.from(w.read().dataSync().slice().buffer));
    now.forEach((w, i) => expect(Buffer.compare(w, atEpochEnd[i])).toBe(0));
    tf.dispose([d.xs, d.ys]);
    m.dispose();
  });
});

describe('SelectiveRetrainCallback', () => {
  async function run(
    optimizer: tf.Optimizer,
    fragileAt: Record<number, string[]>,
    options: {
      granularity?: 'layer' | 'parameter';
      batchNorm?: boolean;
      userFrozen?: boolean;
      epochs?: number;
    } = {},
  ) {
    const m = model(options);
    m.compile({ optimizer, loss: 'categoricalCrossentropy' });
    const d = data();
    const snapshots: Record<string, Buffer[]>[] = [];
    const bnStats: number[][] = [];
    const tensorsBefore: number[] = [];
    const tensorsAfter: number[] = [];
    const before = new (class extends tf.Callback {
      override async onEpochEnd() {
        tensorsBefore.push(tf.memory().numTensors);
      }
    })();
    const analysis = new SynapticFilterCallback({
      data: d,
      ...analysisOptions,
      onAnalysis: (r) => setLabels(r, fragileAt[r.epoch as number] ?? []),
    });
    const retrain = new SelectiveRetrainCallback({
      analysis,
      granularity: options.granularity ?? 'layer',
    });
    const recorder = new (class extends tf.Callback {
      override async onEpochEnd() {
        tensorsAfter.push(tf.memory().numTensors);
        const names = m.layers.filter((l) => l.weights.length > 0).map((l) => l.name);
        snapshots.push(Object.fromEntries(names.map((n) => [n, bytes(m, n)])));
        if (options.batchNorm)
          bnStats.push(Array.from(m.getLayer('bn').getWeights()[2].dataSync()));
      }
    })();
    const history = await m.fit(d.xs, d.ys, {
      epochs: options.epochs ?? 5,
      batchSize: 16,
      verbose: 0,
      callbacks: [before, analysis, retrain, recorder],
    });
    tf.dispose([d.xs, d.ys]);
    return { m, retrain, snapshots, bnStats, tensorsBefore, tensorsAfter, history };
  }

  it.each([
    ['Adam', () => tf.train.adam(0.01)],
    ['SGD with momentum', () => tf.train.momentum(0.05, 0.9)],
  ])(
    'with %s: frozen layers stay bit-identical, the rest keep changing, a layer can be unfrozen',
    async (_, opt) => {
      // Analyses at epochs 0–1: conv1 fragile; at epochs 2–3: conv1 robust again, conv2 fragile.
      const optimizer = opt();
      const { m, retrain, snapshots, tensorsBefore, tensorsAfter, history } = await run(optimizer, {
        0: ['conv1'],
        1: ['conv1'],
        2: ['conv2'],
        3: ['conv2'],
      });
      // conv1 frozen during epochs 1–2 (after epoch 0's analysis), trained again in epochs 3–4.
      expect(same(snapshots[0].conv1, snapshots[1].conv1)).toBe(true);
      expect(same(snapshots[1].conv1, snapshots[2].conv1)).toBe(true);
      expect(same(snapshots[2].conv1, snapshots[3].conv1)).toBe(false);
      // conv2 trained in epochs 1–2, frozen in epochs 3–4.
      expect(same(snapshots[0].conv2, snapshots[1].conv2)).toBe(false);
      expect(same(snapshots[2].conv2, snapshots[3].conv2)).toBe(true);
      expect(same(snapshots[3].conv2, snapshots[4].conv2)).toBe(true);
      // Everything else changes every epoch.
      for (let e = 1; e < 5; e++) {
        expect(same(snapshots[e - 1].head, snapshots[e].head)).toBe(false);
        expect(same(snapshots[e - 1].user_dense, snapshots[e].user_dense)).toBe(false);
      }
      expect(retrain.history.map((h) => [h.epoch, h.frozen])).toEqual([
        [0, ['conv1']],
        [1, ['conv1']],
        [2, ['conv2']],
        [3, ['conv2']],
        [4, []],
      ]);
      expect(history.history.frozen_layers).toEqual([1, 1, 1, 1, 0]);
      // Both callbacks leave no tensor behind in any epoch (tfjs' own History keeps a few scalar
      // logs per epoch until fit ends: the count before our callbacks grows by a constant).
      expect(tensorsAfter).toEqual(tensorsBefore);
      const growth = tensorsBefore.slice(1).map((n, i) => n - tensorsBefore[i]);
      expect(new Set(growth).size).toBe(1);
      // The optimiser's slots (kept by position) still belong to the variables they were made
      // for: each has its variable's shape.
      const shapes = new Map(m.weights.map((w) => [w.name, w.shape]));
      const slots = (await optimizer.getWeights()).filter((s) => /\/(m|v|momentum)$/.test(s.name));
      expect(slots.length).toBeGreaterThanOrEqual(8);
      for (const slot of slots) {
        expect([slot.name, slot.tensor.shape]).toEqual([
          slot.name,
          shapes.get(slot.name.replace(/\/(m|v|momentum)$/, '')),
        ]);
      }
      // Flags are restored at the end of training.
      expect(m.getLayer('conv2').trainableWeights.length).toBe(2);
      expect(m.trainableWeights.every((w) => w.trainable)).toBe(true);
      m.dispose();
    },
  );

  it("keeps the user's own frozen layers frozen, and freezes single tensors with granularity 'parameter'", async () => {
    const { m, snapshots, retrain } = await run(
      tf.train.adam(0.01),
      { 0: ['conv1', 'user_dense'], 1: [] },
      { userFrozen: true, granularity: 'parameter' },
    );
    expect(retrain.history[0].frozenParameters).toEqual([
      m.getLayer('conv1').weights.find((w) => w.name.includes('kernel'))?.name,
    ]);
    for (let e = 1; e < 5; e++)
      expect(same(snapshots[e - 1].user_dense, snapshots[e].user_dense)).toBe(true);
    expect(m.getLayer('user_dense').trainable).toBe(false);
    // Epoch 1: only conv1's kernel frozen; its bias keeps training.
    const [b0, k0] = snapshots[0].conv1;
    const [b1, k1] = snapshots[1].conv1;
    expect(Buffer.compare(k0, k1)).toBe(0);
    expect(Buffer.compare(b0, b1)).not.toBe(0);
    m.dispose();
  });

  it('does not freeze BatchNorm: its moving statistics keep updating behind a frozen convolution', async () => {
    const { m, snapshots, bnStats } = await run(
      tf.train.adam(0.01),
      { 0: ['conv1'] },
      { batchNorm: true, epochs: 2 },
    );
    expect(same(snapshots[0].conv1, snapshots[1].conv1)).toBe(true);
    expect(bnStats[1]).not.toEqual(bnStats[0]);
    m.dispose();
  });

  it('never freezes every trainable weight (tfjs would throw): such a refresh is skipped', async () => {
    const all = ['conv1', 'conv2', 'user_dense', 'head'];
    const { m, retrain } = await run(tf.train.adam(0.01), { 0: all }, { epochs: 2 });
    expect(retrain.history[0].skipped).toMatch(/every trainable weight is fragile/);
    expect(retrain.frozenLayers).toEqual([]);
    m.dispose();
  });

  it('fails at train begin when the analysis is missing or placed after it, and on bad options', async () => {
    const d = data();
    const m = model();
    m.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
    const analysis = new SynapticFilterCallback({ data: d, ...analysisOptions });
    const retrain = new SelectiveRetrainCallback({ analysis });
    const message = /must be in the same callbacks list, placed before it/;
    await expect(
      m.fit(d.xs, d.ys, { epochs: 1, verbose: 0, callbacks: [retrain, analysis] }),
    ).rejects.toThrow(message);
    await expect(
      m.fit(d.xs, d.ys, { epochs: 1, verbose: 0, callbacks: [retrain] }),
    ).rejects.toThrow(message);
    expect(() => new SelectiveRetrainCallback({ analysis, score: 'accuracy' as never })).toThrow(
      /'score' must be one of clean, adversarial, difference; got 'accuracy'/,
    );
    expect(() => new SelectiveRetrainCallback({ analysis, filters: ['lowpass'] })).toThrow(
      /'lowpass' is not swept/,
    );
    // The paper's filter names count as the filters they stand for.
    const byAlias = new SynapticFilterCallback({ data: d, ...analysisOptions, filters: ['h_b'] });
    expect(byAlias.analysisOptions.filters).toEqual(['lowpass']);
    expect(
      () => new SelectiveRetrainCallback({ analysis: byAlias, filters: ['lowpass'] }),
    ).not.toThrow();
    expect(() => new SelectiveRetrainCallback({ analysis: {} as never })).toThrow(
      /'analysis' must be the SynapticFilterCallback/,
    );
    expect(
      () => new SelectiveRetrainCallback({ analysis, granularity: 'tensor' as never }),
    ).toThrow(/'granularity'/);
    tf.dispose([d.xs, d.ys]);
    m.dispose();
  });

  it('saves and restores its state: a resumed run keeps the same weights frozen', async () => {
    const d = data();
    const first = model();
    first.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const analysis = new SynapticFilterCallback({
      data: d,
      ...analysisOptions,
      onAnalysis: (r) => setLabels(r, ['conv1']),
    });
    const retrain = new SelectiveRetrainCallback({ analysis });
    await first.fit(d.xs, d.ys, {
      epochs: 1,
      batchSize: 16,
      verbose: 0,
      callbacks: [analysis, retrain],
    });
    const state = JSON.parse(JSON.stringify(retrain.getState()));
    expect(state.frozenParameters).toEqual(['conv1/kernel', 'conv1/bias']);
    // A new process would build the model anew: its weights get other unique names.
    const second = model();
    second.setWeights(first.getWeights());
    second.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const later = new SynapticFilterCallback({ data: d, ...analysisOptions, every: 5 });
    const resumed = new SelectiveRetrainCallback({ analysis: later });
    resumed.setState(state);
    const before = { conv1: bytes(second, 'conv1'), head: bytes(second, 'head') };
    await second.fit(d.xs, d.ys, {
      epochs: 2,
      batchSize: 16,
      verbose: 0,
      callbacks: [later, resumed],
    });
    expect(same(bytes(second, 'conv1'), before.conv1)).toBe(true);
    expect(same(bytes(second, 'head'), before.head)).toBe(false);
    expect(resumed.frozenLayers).toEqual(['conv1']);
    expect(resumed.history).toEqual(state.history);
    expect(second.getLayer('conv1').trainableWeights).toHaveLength(2);
    expect(() => resumed.setState({} as never)).toThrow(/expected \{ frozenParameters/);
    tf.dispose([d.xs, d.ys]);
    first.dispose();
    second.dispose();
  });

  it('a restored state stands for the start report too: it is neither refreshed nor recorded again', async () => {
    const d = data();
    const first = model();
    first.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    // Only a start report (epoch −1) decides: no analysis at the end of the first epoch.
    const analysis = new SynapticFilterCallback({
      data: d,
      ...analysisOptions,
      atStart: true,
      every: 5,
      onAnalysis: (r) => setLabels(r, ['conv1']),
    });
    const retrain = new SelectiveRetrainCallback({ analysis });
    await first.fit(d.xs, d.ys, {
      epochs: 1,
      batchSize: 16,
      verbose: 0,
      callbacks: [analysis, retrain],
    });
    const state = JSON.parse(JSON.stringify(retrain.getState()));
    expect(state.history.map((r: { epoch: number }) => r.epoch)).toEqual([-1]);
    expect(state.frozenParameters).toEqual(['conv1/kernel', 'conv1/bias']);

    // Resume in a new model: the analysis state still ends with the start report (under the
    // new model's names), as a checkpoint taken before the next analysis would have it.
    const second = model();
    second.setWeights(first.getWeights());
    second.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const rename = new Map(first.weights.map((w, i) => [w.name, second.weights[i].name]));
    const [start] = analysis.getState().reports;
    for (const p of start.parameters) p.name = rename.get(p.name) ?? p.name;
    const later = new SynapticFilterCallback({ data: d, ...analysisOptions, every: 5 });
    later.setState({ reports: [start] });
    const resumed = new SelectiveRetrainCallback({ analysis: later });
    resumed.setState(state);
    const conv1 = bytes(second, 'conv1');
    await second.fit(d.xs, d.ys, {
      epochs: 2,
      initialEpoch: 1,
      batchSize: 16,
      verbose: 0,
      callbacks: [later, resumed],
    });
    expect(resumed.history).toEqual(state.history);
    expect(resumed.frozenLayers).toEqual(['conv1']);
    expect(same(bytes(second, 'conv1'), conv1)).toBe(true);

    // Without a restored state, the same start report decides the first frozen set.
    const fresh = new SelectiveRetrainCallback({ analysis: later });
    later.setState({ reports: [start] });
    await second.fit(d.xs, d.ys, {
      epochs: 1,
      batchSize: 16,
      verbose: 0,
      callbacks: [later, fresh],
    });
    expect(fresh.history.map((r) => [r.epoch, r.frozen])).toEqual([[-1, ['conv1']]]);
    tf.dispose([d.xs, d.ys]);
    first.dispose();
    second.dispose();
  });

  it('restores every trainable flag when fit throws (analysis error; any error through track)', async () => {
    const d = data();
    const trainable = (m: tf.LayersModel) =>
      Object.fromEntries(m.trainableWeights.map((w) => [w.originalName, w.trainable]));
    const fit = async (failIn: 'analysis' | 'other', tracked: boolean) => {
      const m = model();
      m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
      const before = trainable(m);
      const analysis = new SynapticFilterCallback({
        data: d,
        ...analysisOptions,
        onAnalysis: (r) => {
          if (r.epoch === 1 && failIn === 'analysis') throw new Error('analysis failed');
          setLabels(r, ['conv1', 'conv2']);
        },
      });
      const retrain = new SelectiveRetrainCallback({ analysis });
      let frozenAtEpoch0: string[] = [];
      const other = new (class extends tf.Callback {
        override async onEpochEnd(epoch: number) {
          if (epoch === 0) frozenAtEpoch0 = retrain.frozenLayers;
          if (epoch === 1 && failIn === 'other') throw new Error('other failed');
        }
      })();
      const training = m.fit(d.xs, d.ys, {
        epochs: 3,
        batchSize: 32,
        verbose: 0,
        callbacks: [analysis, retrain, other],
      });
      await expect(tracked ? retrain.track(training) : training).rejects.toThrow(/failed/);
      expect(frozenAtEpoch0).toEqual(['conv1', 'conv2']);
      expect(trainable(m)).toEqual(before);
      m.dispose();
    };
    await fit('analysis', false);
    await fit('other', true);
    tf.dispose([d.xs, d.ys]);
  });

  it('works in fitDataset too', async () => {
    const d = data();
    const m = model();
    m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const ds = tf.data
      .zip({ xs: tf.data.array(tf.unstack(d.xs)), ys: tf.data.array(tf.unstack(d.ys)) })
      .batch(16) as unknown as tf.data.Dataset<tf.TensorContainer>;
    const analysis = new SynapticFilterCallback({
      data: d,
      ...analysisOptions,
      onAnalysis: (r) => setLabels(r, ['conv2']),
    });
    const retrain = new SelectiveRetrainCallback({ analysis });
    await m.fitDataset(ds, { epochs: 2, verbose: 0, callbacks: [analysis, retrain] });
    expect(analysis.reports).toHaveLength(2);
    expect(retrain.history.map((h) => h.frozen)).toEqual([['conv2'], ['conv2']]);
    tf.dispose([d.xs, d.ys]);
    m.dispose();
  });
});
