/**
 * Sharded analysis (issue 21): the shards' partial reports merge into the unsharded report,
 * byte for byte apart from `seconds`, for n = 1…4 and more shards than sweeps; the split is
 * deterministic and balanced by cost; missing, duplicated and foreign shards are refused.
 */
import * as tf from '@tensorflow/tfjs';
import {
  analyze,
  mergeShards,
  parseShardId,
  shardOptions,
  shardPlan,
  shardWork,
  ShardMergeError,
  type AnalysisReport,
  type AnalyzeOptions,
  type ShardPartial,
} from '../src/analysis';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';

/** A tiny CNN trained one epoch on real digits (14×14), and 40 test digits. */
async function tinyModel() {
  const { train, test } = loadBuiltinMnist({ trainSize: 300, testSize: 40, seed: 5 });
  const shrink = (x: tf.Tensor4D) => tf.tidy(() => tf.avgPool(x, 2, 2, 'valid'));
  const xs = shrink(train.xs);
  const testXs = shrink(test.xs);
  tf.dispose([train.xs, test.xs]);
  const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [14, 14, 1],
        filters: 4,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(1),
        name: 'c1',
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({
        filters: 8,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(2),
        name: 'c2',
      }),
      tf.layers.flatten(),
      tf.layers.dense({
        units: 10,
        activation: 'softmax',
        kernelInitializer: init(3),
        name: 'out',
      }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
  await model.fit(xs, train.ys, { epochs: 2, batchSize: 50, verbose: 0 });
  tf.dispose([xs, train.ys]);
  return { model, data: { xs: testXs, ys: test.ys } };
}

const withoutTimings = (r: AnalysisReport) => JSON.stringify({ ...r, seconds: 0 });

async function shardPartials(
  model: tf.LayersModel,
  data: { xs: tf.Tensor; ys: tf.Tensor },
  options: AnalyzeOptions,
  count: number,
  fingerprint = { model: 'm', data: 'd' },
): Promise<Array<{ source: string; partial: ShardPartial }>> {
  const plan = shardPlan(model, options);
  const out = [];
  for (let index = 0; index < count; index++) {
    const work = shardWork(plan, { index, count });
    const report = work.length ? await analyze(model, data, { ...options, work }) : null;
    out.push({
      source: `shard-${index}`,
      partial: {
        kind: 'tfjs-antifragile/analysis-shard' as const,
        version: 1 as const,
        shard: { index, count },
        fingerprint: { ...fingerprint, options: shardOptions(model, options) },
        plan: plan.map(({ parameter, filter }) => ({ parameter, filter })),
        work,
        report,
      },
    });
  }
  return out;
}

describe('sharded analysis', () => {
  let model: tf.LayersModel;
  let data: { xs: tf.Tensor; ys: tf.Tensor };
  beforeAll(async () => {
    ({ model, data } = await tinyModel());
  });
  afterAll(() => {
    model.dispose();
    tf.dispose([data.xs, data.ys]);
  });

  describe.each<[string, AnalyzeOptions]>([
    ['regenerated FGSM', { epsilon: 0.2, steps: 3, batchSize: 16 }],
    ['fixed attack, naive', { epsilon: 0.2, steps: 4, regenerate: false, strategy: 'naive' }],
    ['global mode', { epsilon: 0.2, steps: 3, mode: 'global', filters: ['h_a', 'pulse'] }],
  ])('%s', (_name, options) => {
    let full: AnalysisReport;
    beforeAll(async () => {
      full = await analyze(model, data, options);
    });

    it.each([1, 2, 3, 4, 10])(
      '%i shards merge into the unsharded report, byte for byte',
      async (n) => {
        const before = tf.memory().numTensors;
        const partials = await shardPartials(model, data, options, n);
        expect(tf.memory().numTensors).toBe(before);
        // Every sweep in exactly one shard.
        const all = partials.flatMap((p) =>
          p.partial.work.map((w) => `${w.parameter}:${w.filter}`),
        );
        expect(new Set(all).size).toBe(all.length);
        expect(all.length).toBe(partials[0].partial.plan.length);
        // Shuffled input order merges the same.
        const merged = mergeShards([...partials].reverse());
        expect(withoutTimings(merged)).toBe(withoutTimings(full));
      },
    );
  });

  it('splits deterministically, balanced by cost (suffix FLOPs × steps)', () => {
    const options: AnalyzeOptions = { epsilon: 0.2, steps: 5, regenerate: false };
    const plan = shardPlan(model, options);
    expect(plan.map((w) => w.parameter)).toEqual([
      'c1/kernel',
      'c1/kernel',
      'c1/kernel',
      'c2/kernel',
      'c2/kernel',
      'c2/kernel',
      'out/kernel',
      'out/kernel',
      'out/kernel',
    ]);
    // Deeper layers have shorter suffixes: cheaper without regeneration.
    expect(plan[0].cost).toBeGreaterThan(plan[3].cost);
    expect(plan[3].cost).toBeGreaterThan(plan[6].cost);
    const loads = [0, 1, 2].map((index) =>
      shardWork(plan, { index, count: 3 }).reduce(
        (s, w) => s + plan.find((p) => p.parameter === w.parameter && p.filter === w.filter)!.cost,
        0,
      ),
    );
    // LPT: no shard exceeds the ideal share by more than the largest item.
    const ideal = plan.reduce((s, w) => s + w.cost, 0) / 3;
    expect(Math.max(...loads)).toBeLessThanOrEqual(ideal + plan[0].cost);
    expect(shardWork(plan, { index: 1, count: 3 })).toEqual(
      shardWork(plan, { index: 1, count: 3 }),
    );
    expect(() => parseShardId('3/3')).toThrow('index 3 is outside 0…2');
    expect(() => parseShardId('a/3')).toThrow("expected i/n (e.g. 0/4); got 'a/3'");
    expect(parseShardId('2/4')).toEqual({ index: 2, count: 4 });
  });

  describe('refuses', () => {
    const options: AnalyzeOptions = {
      epsilon: 0.2,
      steps: 3,
      regenerate: false,
      parameters: ['c2/kernel', 'out/kernel'],
    };
    let partials: Array<{ source: string; partial: ShardPartial }>;
    beforeAll(async () => {
      partials = await shardPartials(model, data, options, 3);
    });
    it('a missing shard', () => {
      expect(() => mergeShards([partials[0], partials[2]])).toThrow(
        new ShardMergeError('merge: shard 1/3 missing (have shard-0, shard-2)'),
      );
    });
    it('a duplicated shard', () => {
      expect(() => mergeShards([...partials, { ...partials[1], source: 'again' }])).toThrow(
        'merge: shard 1/3 is given twice: shard-1 and again',
      );
    });
    it('a shard of another model, data or options', async () => {
      const [other] = await shardPartials(model, data, options, 3, { model: 'other', data: 'd' });
      expect(() => mergeShards([partials[0], partials[1], { ...other, source: 'x' }])).toThrow(
        "merge: x is a shard of another analysis: its model differs from shard-0's (other ≠ m)",
      );
      const steps = await shardPartials(model, data, { ...options, steps: 4 }, 3);
      expect(() => mergeShards([partials[0], partials[1], steps[2]])).toThrow(
        "merge: shard-2 is a shard of another analysis: its options differs from shard-0's",
      );
    });
    it('work naming a sweep the analysis does not cover', async () => {
      await expect(
        analyze(model, data, { ...options, work: [{ parameter: 'c1/kernel', filter: 'pulse' }] }),
      ).rejects.toThrow(
        'names a parameter the analysis does not cover; it covers c2/kernel, out/kernel',
      );
    });
  });
});
