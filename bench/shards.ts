/**
 * `npm run bench -- shards`: a sharded analysis on this machine, and the arithmetic of one on a
 * cluster. Part 1 runs one analysis (the small CNN on MNIST digits, regenerate: true)
 * unsharded and as 2 and 4 shards, each shard after the other in this process, and reports
 * each shard's time, the slowest shard (the wall time with one machine per shard) and the
 * merge's time; the merged reports are checked equal to the unsharded one. Part 2 measures one
 * filtered model of the paper-scale analysis (ResNet-18 on CIFAR-10-sized images: an input
 * gradient and a forward pass of the attacked set) and projects the analysis' wall time on 1,
 * 16 and 64 pods from it — arithmetic, not a cluster measurement.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend';
import {
  analyze,
  fgsm,
  mergeShards,
  shardOptions,
  shardPlan,
  shardWork,
  type AnalysisReport,
  type AnalyzeOptions,
  type ShardPartial,
} from '../src/analysis';
import { dataHash, modelHash } from '../src/experiment/fingerprint';
import { buildModel } from '../src/models';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';
import { intArg, parseArgs, type Bench } from './lib/bench';
import { median } from './lib/timing';
import { writeResult } from './lib/results';
import { markdownTable, seconds } from './lib/table';

const SHARD_COUNTS = [1, 2, 4];
/** The paper-scale analysis (docs/method.md defaults): K, filters, regenerate, test images. */
const PAPER = { steps: 25, examples: 1000, regenerate: true };

interface ShardTimes {
  shards: number;
  perShard: number[];
  slowest: number;
  mergeMs: number;
}

const withoutSeconds = (r: AnalysisReport) => JSON.stringify({ ...r, seconds: 0 });

/** One analysis as `count` shards, one after the other; each shard's seconds and the merge's. */
async function runShards(
  model: tf.LayersModel,
  data: { xs: tf.Tensor; ys: tf.Tensor },
  options: AnalyzeOptions,
  count: number,
): Promise<{ times: ShardTimes; report: AnalysisReport }> {
  const plan = shardPlan(model, options);
  const fingerprint = {
    model: modelHash(model),
    data: dataHash(data.xs, data.ys),
    options: shardOptions(model, options),
  };
  const partials: Array<{ source: string; partial: ShardPartial }> = [];
  const perShard: number[] = [];
  for (let index = 0; index < count; index++) {
    const shard = { index, count };
    const work = shardWork(plan, shard);
    const started = performance.now();
    const report = await analyze(model, data, { ...options, work });
    perShard.push((performance.now() - started) / 1000);
    const partial: ShardPartial = {
      kind: 'tfjs-antifragile/analysis-shard',
      version: 1,
      shard,
      fingerprint,
      plan: plan.map(({ parameter, filter }) => ({ parameter, filter })),
      work,
      report,
    };
    // Through JSON, as the partials travel between machines.
    partials.push({ source: `shard ${index}`, partial: JSON.parse(JSON.stringify(partial)) });
  }
  const started = performance.now();
  const report = mergeShards(partials);
  const mergeMs = performance.now() - started;
  return { times: { shards: count, perShard, slowest: Math.max(...perShard), mergeMs }, report };
}

/** Seconds of one filtered model of the paper's analysis on `examples` CIFAR-10-sized images. */
function perModelSeconds(examples: number, repeats: number): { seconds: number; sweeps: number } {
  const model = buildModel('resnet18', { inputShape: [32, 32, 3], classes: 10, seed: 1 });
  const sweeps = shardPlan(model, {
    epsilon: 8 / 255,
    steps: PAPER.steps,
    regenerate: PAPER.regenerate,
  }).length;
  const xs = tf.randomUniform([examples, 32, 32, 3], 0, 1, 'float32', 1);
  const ys = tf.oneHot(tf.randomUniform([examples], 0, 10, 'int32', 2) as tf.Tensor1D, 10);
  const times: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const started = performance.now();
    // regenerate: true → per filtered model an input gradient (FGSM) and a forward pass.
    tf.tidy(() => {
      const adversarial = fgsm(model, xs, ys, 8 / 255);
      (model.predict(adversarial) as tf.Tensor).dataSync();
    });
    if (r > 0) times.push((performance.now() - started) / 1000); // the first warms up
  }
  tf.dispose([xs, ys]);
  model.dispose();
  return { seconds: median(times), sweeps };
}

function projection(perModel: number, measuredOn: number, sweeps: number) {
  const perModelPaper = perModel * (PAPER.examples / measuredOn);
  return [1, 16, 64].map((pods) => {
    const sweepsPerPod = Math.ceil(sweeps / pods);
    const hours = (sweepsPerPod * PAPER.steps * perModelPaper) / 3600;
    return { pods, sweepsPerPod, perModelPaper, hours };
  });
}

export const bench: Bench = {
  name: 'shards',
  description:
    'sharded analysis: per-shard times and merge overhead for n = 1, 2, 4; ResNet-18 CIFAR-10 on 16/64 pods (arithmetic)',
  async run(argv) {
    const args = parseArgs(argv, ['examples', 'steps', 'cifar-examples', 'repeats']);
    const examples = intArg(args, 'examples', 200);
    const steps = intArg(args, 'steps', 5);
    const cifarExamples = intArg(args, 'cifar-examples', 100);
    const repeats = intArg(args, 'repeats', 2);
    const backend = await initBackend({ log: () => undefined });
    const { test } = loadBuiltinMnist({ trainSize: 1, testSize: examples, seed: 7 });
    const model = buildModel('small_cnn', { inputShape: [28, 28, 1], seed: 7 });
    const options: AnalyzeOptions = { epsilon: 0.1, steps, regenerate: true, batchSize: 256 };
    // Warm-up (kernels, first allocations), so that n = 1 does not pay for it alone.
    const [first] = shardPlan(model, options);
    await analyze(model, test, {
      ...options,
      work: [{ parameter: first.parameter, filter: first.filter }],
    });
    const results: ShardTimes[] = [];
    let unsharded: AnalysisReport | undefined;
    for (const count of SHARD_COUNTS) {
      const { times, report } = await runShards(model, test, options, count);
      unsharded ??= report;
      if (withoutSeconds(report) !== withoutSeconds(unsharded)) {
        throw new Error(`the merge of ${count} shards differs from the unsharded analysis`);
      }
      results.push(times);
    }
    const sweeps = shardPlan(model, options).length;
    tf.dispose([test.xs, test.ys]);
    model.dispose();
    console.log(
      `Backend ${backend.id}; small CNN on ${examples} MNIST digits, K = ${steps}, ` +
        `regenerate: true, ${sweeps} sweeps; shards run one after the other on this machine:\n`,
    );
    console.log(
      markdownTable(
        ['shards', 'each shard', 'slowest shard', 'sum of shards', 'merge'],
        results.map((r) => [
          String(r.shards),
          r.perShard.map(seconds).join(', '),
          seconds(r.slowest),
          seconds(r.perShard.reduce((a, b) => a + b, 0)),
          `${r.mergeMs.toFixed(1)} ms`,
        ]),
      ),
    );
    console.log('\nEvery merge equals the unsharded report (all values but `seconds`).');

    const cost = perModelSeconds(cifarExamples, repeats);
    const rows = projection(cost.seconds, cifarExamples, cost.sweeps);
    console.log(
      `\nMeasured: one filtered ResNet-18 (CIFAR-10 size, 32×32×3) model — input gradient + forward ` +
        `pass of ${cifarExamples} images — ${seconds(cost.seconds)} (median of ${repeats}).\n` +
        `Projected (arithmetic, not measured): ${PAPER.examples} images → ${seconds(rows[0].perModelPaper)} ` +
        `per model; ${cost.sweeps} sweeps (parameters × 3 filters) × K = ${PAPER.steps} = ` +
        `${cost.sweeps * PAPER.steps} models; a pod computes ⌈${cost.sweeps} / pods⌉ sweeps:\n`,
    );
    console.log(
      markdownTable(
        ['pods', 'sweeps per pod', 'wall time (h)'],
        rows.map((r) => [
          String(r.pods),
          String(r.sweepsPerPod),
          `${r.sweepsPerPod} × ${PAPER.steps} × ${r.perModelPaper.toFixed(2)} s = ${r.hours.toFixed(2)}`,
        ]),
      ),
    );
    const file = writeResult('shards', {
      backend: backend.id,
      local: { model: 'small_cnn', examples, steps, sweeps, shards: results },
      perModel: { examples: cifarExamples, seconds: cost.seconds, repeats },
      projection: rows,
    });
    console.log(`\nwritten ${file}`);
  },
};
