import * as tf from '@tensorflow/tfjs';
import { analyze, applyFilter, fgsm, invariance, labelCounts } from '../src/analysis';
import type { AnalysisReport, AnalyzeOptions } from '../src/analysis';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';

/** A small CNN with BatchNorm and Dropout, trained briefly on real digits (14×14 to be quick). */
async function trainedModel(): Promise<{
  model: tf.LayersModel;
  data: { xs: tf.Tensor; ys: tf.Tensor };
}> {
  const { train, test } = loadBuiltinMnist({ trainSize: 600, testSize: 120, seed: 3 });
  const shrink = (x: tf.Tensor4D) => tf.tidy(() => tf.avgPool(x, 2, 2, 'valid'));
  const trainXs = shrink(train.xs);
  const testXs = shrink(test.xs);
  tf.dispose([train.xs, test.xs]);
  const seed = (s: number) => tf.initializers.glorotUniform({ seed: s });
  const input = tf.input({ shape: [14, 14, 1] });
  let h = tf.layers
    .conv2d({ filters: 6, kernelSize: 3, kernelInitializer: seed(1), name: 'conv' })
    .apply(input);
  h = tf.layers.batchNormalization({ name: 'bn' }).apply(h);
  h = tf.layers.activation({ activation: 'relu' }).apply(h);
  h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h);
  h = tf.layers.flatten().apply(h);
  h = tf.layers.dropout({ rate: 0.5, name: 'drop' }).apply(h);
  const out = tf.layers
    .dense({ units: 10, activation: 'softmax', kernelInitializer: seed(2), name: 'head' })
    .apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  await model.fit(trainXs, train.ys, { epochs: 3, batchSize: 100, verbose: 0 });
  tf.dispose([trainXs, train.ys]);
  return { model, data: { xs: testXs, ys: test.ys } };
}

function weightBytes(model: tf.LayersModel): Uint8Array[] {
  return model.weights.map((w) => new Uint8Array(w.read().dataSync().slice().buffer));
}

function accuracy(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): number {
  return tf.tidy(() => {
    const predicted = (model.predict(xs) as tf.Tensor).argMax(-1);
    return predicted.equal(ys.argMax(-1)).mean().dataSync()[0];
  });
}

const options: AnalyzeOptions = { epsilon: 0.15, steps: 7, batchSize: 64 };

describe('analyze (docs/method.md §1–§6)', () => {
  let model: tf.LayersModel;
  let data: { xs: tf.Tensor; ys: tf.Tensor };
  let report: AnalysisReport;
  let before: Uint8Array[];
  let tensorsBefore: number;

  beforeAll(async () => {
    ({ model, data } = await trainedModel());
    before = weightBytes(model);
    tensorsBefore = tf.memory().numTensors;
    report = await analyze(model, data, options);
  });

  afterAll(() => {
    tf.dispose([data.xs, data.ys]);
    model.dispose();
  });

  it('leaves every weight bit-identical and no tensor behind', () => {
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    const after = weightBytes(model);
    after.forEach((bytes, i) =>
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(before[i]))).toBe(0),
    );
  });

  it('selects the kernels of convolution and dense layers by default, nothing else', () => {
    expect(report.parameters.map((p) => p.name)).toEqual(['conv/kernel', 'head/kernel']);
    expect(report.parameters.map((p) => p.layer)).toEqual(['conv', 'head']);
    expect(report.parameters.map((p) => p.depth)).toEqual([0, 0.5]);
    expect(report.parameters[0].shape).toEqual([3, 3, 1, 6]);
    expect(report.parameters[0].size).toBe(54);
  });

  it('reports the reference accuracies of the unfiltered model in inference mode', () => {
    expect(report.reference.clean).toBeCloseTo(accuracy(model, data.xs, data.ys), 6);
    const adv = fgsm(model, data.xs, data.ys, options.epsilon);
    expect(report.reference.adversarial).toBeCloseTo(accuracy(model, adv, data.ys), 6);
    adv.dispose();
    expect(report.reference.adversarial).toBeLessThan(report.reference.clean);
  });

  it('each step equals an independent evaluation of the filtered model (white-box FGSM)', () => {
    const param = report.parameters[1];
    const variable = model.getLayer('head').getWeights()[0];
    for (const filter of ['highpass', 'pulse'] as const) {
      for (const step of [0, 3, 6]) {
        const original = variable.clone();
        const { filtered, removed } = applyFilter(original, filter, step, options.steps as number);
        const [, bias] = model.getLayer('head').getWeights();
        model.getLayer('head').setWeights([filtered, bias]);
        const clean = accuracy(model, data.xs, data.ys);
        const adv = fgsm(model, data.xs, data.ys, options.epsilon);
        const adversarial = accuracy(model, adv, data.ys);
        model.getLayer('head').setWeights([original, bias]);
        const got = param.filters[filter]?.steps[step];
        expect(got?.removed).toBe(removed);
        expect(got?.clean).toBeCloseTo(clean, 6);
        expect(got?.adversarial).toBeCloseTo(adversarial, 6);
        tf.dispose([original, filtered, adv]);
      }
    }
  });

  it('gives every parameter × filter its steps, three scores and three labels', () => {
    for (const p of report.parameters) {
      for (const f of ['highpass', 'lowpass', 'pulse'] as const) {
        const r = p.filters[f];
        expect(r?.steps).toHaveLength(7);
        expect(r?.steps.map((s) => s.progress)).toEqual([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1]);
        expect(r?.steps[6].removed).toBe(f === 'pulse' ? r?.steps[6].removed : p.size);
        expect(r?.scores.difference).toBeCloseTo(
          (r?.scores.adversarial ?? 0) - (r?.scores.clean ?? 0),
          12,
        );
        for (const label of Object.values(r?.labels ?? {})) {
          expect(['fragile', 'robust', 'antifragile']).toContain(label);
        }
      }
    }
  });

  it('is plain JSON and deterministic (Dropout and BatchNorm in inference mode)', async () => {
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    const again = await analyze(model, data, options);
    expect({ ...again, seconds: 0 }).toEqual({ ...report, seconds: 0 });
  });

  it.each([true, false])(
    'the fast strategy gives exactly the naive sweep (regenerate: %s)',
    async (regenerate) => {
      const opts = { ...options, regenerate, steps: 5 };
      const fast = await analyze(model, data, opts);
      const naive = await analyze(model, data, { ...opts, strategy: 'naive' });
      const results = (r: typeof fast) => r.parameters.map(({ evaluated: _, ...rest }) => rest);
      expect(results(fast)).toEqual(results(naive));
      // The naive sweep evaluates every (filter, step); ours skips repeated removed sets.
      fast.parameters.forEach((p, i) => {
        expect(naive.parameters[i].evaluated).toBe(15);
        expect(p.evaluated).toBeLessThan(15);
      });
      expect(fast.reference).toEqual(naive.reference);
    },
  );

  it('global mode filters all selected tensors at once and reports one entry', async () => {
    const global = await analyze(model, data, {
      ...options,
      mode: 'global',
      filters: ['highpass'],
    });
    expect(global.parameters).toHaveLength(1);
    expect(global.parameters[0].name).toBe('(global)');
    const total = report.parameters.reduce((n, p) => n + p.size, 0);
    expect(global.parameters[0].size).toBe(total);
    const last = global.parameters[0].filters.highpass?.steps[6];
    expect(last?.removed).toBe(total);
    expect(last?.clean).toBeLessThanOrEqual(0.3); // no weights left: chance level
  });

  it('reports progress up to the total', async () => {
    const seen: number[] = [];
    let total = 0;
    await analyze(model, data, {
      ...options,
      filters: ['lowpass'],
      parameters: [/^head\/kernel$/],
      onProgress: (p) => {
        seen.push(p.done);
        total = p.total;
        expect(p.parameter).toBe('head/kernel');
      },
    });
    expect(total).toBe(7);
    expect(seen[seen.length - 1]).toBe(7);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });

  it('supports PGD and a fixed (transfer) adversarial set', async () => {
    const r = await analyze(model, data, {
      ...options,
      attack: 'pgd',
      pgd: { steps: 3, stepSize: 0.05 },
      regenerate: false,
      filters: ['pulse'],
      parameters: 'head/kernel',
    });
    expect(r.options.attack).toBe('pgd');
    expect(r.reference.adversarial).toBeLessThanOrEqual(report.reference.clean);
  });

  it('label counts and invariance across reports', async () => {
    const counts = labelCounts(report);
    const sum = Object.values(counts.highpass?.adversarial ?? {}).reduce((a, b) => a + b, 0);
    expect(sum).toBe(2);
    const same = invariance([report, report]);
    expect(same.entries.every((e) => e.invariant)).toBe(true);
    // A report whose labels are all flipped to 'fragile' shares only the entries already fragile.
    const flipped: AnalysisReport = JSON.parse(JSON.stringify(report));
    for (const p of flipped.parameters) {
      for (const r of Object.values(p.filters))
        if (r) r.labels = { clean: 'fragile', adversarial: 'fragile', difference: 'fragile' };
    }
    const mixed = invariance([report, flipped]);
    for (const e of mixed.entries) expect(e.invariant).toBe(e.labels[0] === 'fragile');
    // Across architectures: match by relative depth, whatever the names.
    const renamed: AnalysisReport = JSON.parse(JSON.stringify(report));
    renamed.parameters.forEach((p, i) => (p.name = `other_${i}`));
    expect(() => invariance([report, renamed])).toThrow(/match: 'depth'/);
    const byDepth = invariance([report, renamed], { match: 'depth' });
    expect(byDepth.entries.every((e) => e.invariant)).toBe(true);
    expect(byDepth.entries[0].matched).toEqual(['conv/kernel', 'other_0']);
  });

  describe('bad input fails clearly and leaves the model untouched', () => {
    const cases: Array<[string, Partial<AnalyzeOptions> | (() => AnalyzeOptions), RegExp]> = [
      ['epsilon ≤ 0', { epsilon: 0 }, /option 'epsilon' must be > 0; got 0/],
      ['steps < 3', { steps: 2 }, /option 'steps' must be >= 3; got 2/],
      [
        'an unknown filter',
        { filters: ['bandstop' as never] },
        /option 'filters.0' must be equal to one of the allowed values: one of "highpass", "lowpass", "pulse", "h_a", "h_b", "h_c"; got "bandstop"/,
      ],
      ['an unknown option', { epsilon: 0.1, stepz: 3 } as never, /unknown option 'stepz'/],
      ['a bad baseline', { baseline: 'zero' as never }, /option 'baseline'.*remaining.*got "zero"/],
      [
        'an empty selection',
        { parameters: [/nothing/] },
        /matches no weight of this model; its weights are conv\/kernel/,
      ],
      ['an unknown weight name', { parameters: ['conv/kernal'] }, /no weight named 'conv\/kernal'/],
    ];
    it.each(cases)('%s', async (_, change, message) => {
      const opts = typeof change === 'function' ? change() : { ...options, ...change };
      const tensors = tf.memory().numTensors;
      await expect(analyze(model, data, opts as AnalyzeOptions)).rejects.toThrow(message);
      expect(tf.memory().numTensors).toBe(tensors);
    });

    it('data that does not fit the model', async () => {
      const wrong = tf.zeros([4, 28, 28, 1]);
      await expect(analyze(model, { xs: wrong, ys: data.ys }, options)).rejects.toThrow(
        /data.xs has shape \[4, 28, 28, 1\] but the model expects \[n, 14, 14, 1\]/,
      );
      const fewLabels = data.ys.slice(0, 5);
      await expect(analyze(model, { xs: data.xs, ys: fewLabels }, options)).rejects.toThrow(
        /120 examples but data.ys has 5/,
      );
      tf.dispose([wrong, fewLabels]);
    });

    it('non-finite weights', async () => {
      const head = model.getLayer('head');
      const [kernel, bias] = head.getWeights();
      const broken = tf.buffer(kernel.shape, 'float32', kernel.dataSync().slice() as Float32Array);
      broken.set(NaN, 3, 4);
      const brokenKernel = broken.toTensor();
      head.setWeights([brokenKernel, bias]);
      const snapshot = weightBytes(model);
      await expect(analyze(model, data, options)).rejects.toThrow(
        /weight 'head\/kernel' has a non-finite value \(NaN\)/,
      );
      weightBytes(model).forEach((b, i) =>
        expect(Buffer.compare(Buffer.from(b), Buffer.from(snapshot[i]))).toBe(0),
      );
      head.setWeights([kernel, bias]);
      brokenKernel.dispose();
    });

    it('a NaN in a weight that is not analysed', async () => {
      const bn = model.getLayer('bn');
      const saved = bn.getWeights();
      const gamma = saved[0].dataSync().slice() as Float32Array;
      gamma[2] = NaN;
      const broken = tf.tensor(gamma);
      bn.setWeights([broken, ...saved.slice(1)]);
      const snapshot = weightBytes(model);
      await expect(
        analyze(model, data, { ...options, parameters: ['head/kernel'] } as AnalyzeOptions),
      ).rejects.toThrow(/weight 'bn\/gamma\S*' has a non-finite value \(NaN\) at flat index 2/);
      weightBytes(model).forEach((b, i) =>
        expect(Buffer.compare(Buffer.from(b), Buffer.from(snapshot[i]))).toBe(0),
      );
      bn.setWeights(saved);
      broken.dispose();
    });

    const n = 120;
    const dataCases: Array<[string, () => { xs: tf.Tensor; ys: tf.Tensor }, RegExp]> = [
      ...[12, -1, 99, 2.7].map((id): [string, () => { xs: tf.Tensor; ys: tf.Tensor }, RegExp] => [
        `class id ${id}`,
        () => {
          const ids = new Float32Array(n).fill(1);
          ids[7] = id;
          return { xs: data.xs, ys: tf.tensor1d(ids) };
        },
        new RegExp(`the id of example 7 is ${id}; expected an integer in 0–9`),
      ]),
      [
        'an all-zero one-hot row',
        () => ({
          xs: data.xs,
          ys: tf.tidy(() => data.ys.mul(tf.scalar(1).sub(tf.oneHot(5, n).toFloat().expandDims(1)))),
        }),
        /data.ys row 5 is not one-hot .*got \[0, 0, 0, 0, 0, 0, 0, 0, 0, 0\]/,
      ],
      [
        'a uniform row',
        () => ({
          xs: data.xs,
          ys: tf.tidy(() =>
            data.ys
              .slice(0, 3)
              .concat(tf.fill([1, 10], 0.1))
              .concat(data.ys.slice(4)),
          ),
        }),
        /data.ys row 3 is not one-hot/,
      ],
      [
        'NaN in xs',
        () => {
          const values = data.xs.dataSync().slice() as Float32Array;
          values[2 * 196 + 5] = NaN;
          return { xs: tf.tensor(values, data.xs.shape), ys: data.ys };
        },
        /data.xs holds a non-finite value \(NaN\) in example 2/,
      ],
      [
        'int32 xs',
        () => ({ xs: data.xs.toInt(), ys: data.ys }),
        /data.xs must be float32.*got int32/,
      ],
    ];
    it.each(dataCases)('%s', async (_, make, message) => {
      const bad = make();
      const tensors = tf.memory().numTensors;
      const snapshot = weightBytes(model);
      await expect(analyze(model, bad, options)).rejects.toThrow(message);
      expect(tf.memory().numTensors).toBe(tensors);
      weightBytes(model).forEach((b, i) =>
        expect(Buffer.compare(Buffer.from(b), Buffer.from(snapshot[i]))).toBe(0),
      );
      tf.dispose([bad.xs, bad.ys].filter((t) => t !== data.xs && t !== data.ys));
    });

    it('arguments that are not a model or data', async () => {
      await expect(analyze(null as never, data, options)).rejects.toThrow(
        /argument 'model' must be a tf.LayersModel .*got null/,
      );
      await expect(analyze(model, { xs: data.xs } as never, options)).rejects.toThrow(
        /argument 'data' must be \{ xs: tf.Tensor, ys: tf.Tensor \}; got Object with xs: a float32 tensor, ys: undefined/,
      );
    });
  });
});
