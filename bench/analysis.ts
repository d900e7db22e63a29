/**
 * `npm run bench -- analysis`: the analysis engine against the naive sweep, on the same model and
 * data in the same run. Checks that both give identical results, prints the speed-up, our time
 * against the FLOP bound (the forward/backward work the analysis cannot avoid, at the matmul
 * rate measured in this run), and the peak memory against a training step's.
 */
import * as cp from 'child_process';
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend';
import {
  analyze,
  fgsm,
  GraphRunner,
  type AnalysisReport,
  type AnalyzeOptions,
} from '../src/analysis';
import { timeIt } from './lib/timing';
import { selectParameters } from '../src/analysis/parameters';
import { buildModel } from '../src/models';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';
import { intArg, parseArgs, type Bench } from './lib/bench';
import { matmulGflops } from './cnn/flops';
import { writeResult } from './lib/results';
import { markdownTable, ratio, seconds } from './lib/table';

const MODEL = {
  name: 'resnet18' as const,
  width: 0.25,
  inputShape: [28, 28, 1] as [number, number, number],
};

/** Forward multiply-accumulates of one example through one layer (convolutions and dense). */
function layerMacs(layer: tf.layers.Layer): number {
  const kind = layer.getClassName();
  const out = layer.outputShape as number[];
  const weights = layer.getWeights();
  if (kind === 'Conv2D') {
    const [kh, kw, cin, cout] = weights[0].shape;
    return out[1] * out[2] * cout * kh * kw * cin;
  }
  if (kind === 'DepthwiseConv2D') {
    const [kh, kw, cin, mult] = weights[0].shape;
    return out[1] * out[2] * cin * mult * kh * kw;
  }
  if (kind === 'Dense') return weights[0].shape[0] * (weights[0].shape[1] as number);
  return 0;
}

function forwardFlops(layers: tf.layers.Layer[]): number {
  return 2 * layers.reduce((sum, l) => sum + layerMacs(l), 0);
}

/**
 * The work an analysis cannot avoid, in FLOPs: the reference (a forward pass of the clean set,
 * an input gradient — forward plus a data-gradient backward ≈ one more forward — and a forward
 * pass of the adversarial set), then for each distinct filtered model: with `regenerate: false`
 * the layers downstream of the ablated one on the clean and adversarial sets; with
 * `regenerate: true` an input gradient of the whole model (which also yields clean accuracy) and
 * a forward pass of the new adversarial set.
 */
function boundFlops(model: tf.LayersModel, report: AnalysisReport, regenerate: boolean): number {
  const n = report.examples;
  const runner = new GraphRunner(model);
  const full = forwardFlops(model.layers);
  const reference = 4 * full * n;
  const params = selectParameters(model);
  let cells = 0;
  report.parameters.forEach((p, i) => {
    if (regenerate) {
      cells += p.evaluated * 3 * full * n;
    } else {
      const suffix = runner.split(params[i].layer).suffix.map((node) => node.layer);
      cells += p.evaluated * forwardFlops(suffix) * 2 * n;
    }
  });
  return reference + cells;
}

/**
 * The same unavoidable work counted in passes of this model at this backend's measured speed:
 * `forward` = seconds of one forward pass over the n examples, `gradient` = seconds of one FGSM
 * input gradient over them. Downstream-only passes are scaled by their share of the FLOPs.
 */
function passBound(
  model: tf.LayersModel,
  report: AnalysisReport,
  regenerate: boolean,
  forward: number,
  gradient: number,
): number {
  const runner = new GraphRunner(model);
  const full = forwardFlops(model.layers);
  const params = selectParameters(model);
  let total = 2 * forward + gradient; // reference: clean and adversarial forward, one attack
  report.parameters.forEach((p, i) => {
    if (regenerate) {
      total += p.evaluated * (gradient + forward);
    } else {
      const suffix = runner.split(params[i].layer).suffix.map((node) => node.layer);
      total += p.evaluated * 2 * forward * (forwardFlops(suffix) / full);
    }
  });
  return total;
}

async function passTimes(
  model: tf.LayersModel,
  data: { xs: tf.Tensor; ys: tf.Tensor },
): Promise<{ forward: number; gradient: number }> {
  // The fastest forward pass we have: the graph runner the analysis itself uses.
  const runner = new GraphRunner(model);
  const forward = await timeIt(() => tf.tidy(() => runner.predict(data.xs).dataSync()), {
    warmup: 1,
    repeats: 5,
  });
  const gradient = await timeIt(
    () => tf.tidy(() => fgsm(model, data.xs, data.ys, 0.1).dataSync()),
    {
      warmup: 1,
      repeats: 5,
    },
  );
  return { forward: forward.median, gradient: gradient.median };
}

function sameResults(
  a: AnalysisReport,
  b: AnalysisReport,
): { identical: boolean; differing: number } {
  let differing = 0;
  a.parameters.forEach((p, i) => {
    for (const [filter, r] of Object.entries(p.filters)) {
      const other = b.parameters[i].filters[filter as keyof typeof p.filters];
      r?.steps.forEach((s, k) => {
        const o = other?.steps[k];
        if (!o || o.clean !== s.clean || o.adversarial !== s.adversarial || o.removed !== s.removed)
          differing++;
      });
    }
  });
  return { identical: differing === 0, differing };
}

function peakRssMiB(): number {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function setup(examples: number): Promise<{
  model: tf.LayersModel;
  data: { xs: tf.Tensor; ys: tf.Tensor };
  train: { xs: tf.Tensor; ys: tf.Tensor };
}> {
  await initBackend({ log: () => undefined });
  const { train, test } = loadBuiltinMnist({ trainSize: 2000, testSize: examples, seed: 7 });
  const model = buildModel(MODEL.name, {
    inputShape: MODEL.inputShape,
    classes: 10,
    width: MODEL.width,
    seed: 7,
  });
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'categoricalCrossentropy' });
  return { model, data: test, train };
}

/** In a child process: one kind of work, then the process's peak resident memory. */
async function memoryChild(kind: string, examples: number, steps: number): Promise<void> {
  const { model, data, train } = await setup(examples);
  if (kind === 'train') {
    await model.fit(train.xs, train.ys, { epochs: 1, batchSize: 100, verbose: 0 });
  } else if (kind === 'analysis') {
    await analyze(model, data, { epsilon: 0.1, steps, regenerate: true, batchSize: 256 });
    await analyze(model, data, { epsilon: 0.1, steps, regenerate: false, batchSize: 256 });
  } else {
    tf.tidy(() => (model.predict(data.xs.slice(0, 1)) as tf.Tensor).dataSync());
  }
  process.stdout.write(JSON.stringify({ kind, peakMiB: peakRssMiB() }));
}

function measureMemory(kind: string, examples: number, steps: number): number {
  const out = cp.execFileSync(
    process.execPath,
    [__filename, '--memory-child', kind, String(examples), String(steps)],
    {
      encoding: 'utf8',
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
    },
  );
  return (JSON.parse(out.trim().split('\n').pop() as string) as { peakMiB: number }).peakMiB;
}

async function run(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['examples', 'steps']);
  const examples = intArg(args, 'examples', 128);
  const steps = intArg(args, 'steps', 9);
  const { model, data, train } = await setup(examples);
  console.log(
    `model: ${MODEL.name} width ${MODEL.width} at ${MODEL.inputShape.join('×')} (${model.countParams()} weights), ` +
      `trained 1 epoch on 2,000 real MNIST digits; analysis of ${examples} held-out digits, K = ${steps}, 3 filters, ` +
      `backend ${tf.getBackend()}`,
  );
  await model.fit(train.xs, train.ys, { epochs: 1, batchSize: 100, verbose: 0 });
  const gflops = await matmulGflops(1024, 5);
  const passes = await passTimes(model, data);
  console.log(
    `measured matmul rate: ${gflops.toFixed(1)} GFLOP/s (1024×1024, float32, this backend)`,
  );
  console.log(
    `measured passes over the ${examples} digits: forward ${(passes.forward * 1000).toFixed(1)} ms, ` +
      `FGSM input gradient ${(passes.gradient * 1000).toFixed(1)} ms\n`,
  );

  const rows: (string | number)[][] = [];
  const result: Record<string, unknown> = { model: MODEL, examples, steps, gflops };
  for (const regenerate of [false, true]) {
    const options: AnalyzeOptions = { epsilon: 0.1, steps, regenerate, batchSize: 256 };
    const fast = await analyze(model, data, options);
    const naive = await analyze(model, data, { ...options, strategy: 'naive' });
    const check = sameResults(fast, naive);
    const bound = boundFlops(model, fast, regenerate) / (gflops * 1e9);
    const passes2 = passBound(model, fast, regenerate, passes.forward, passes.gradient);
    const evaluated = fast.parameters.reduce((s, p) => s + p.evaluated, 0);
    const cells = fast.parameters.length * 3 * steps;
    rows.push([
      `regenerate: ${regenerate}`,
      seconds(naive.seconds),
      seconds(fast.seconds),
      ratio(naive.seconds / fast.seconds),
      `${evaluated}/${cells}`,
      seconds(bound),
      ratio(fast.seconds / bound),
      seconds(passes2),
      ratio(fast.seconds / passes2),
      check.identical ? 'identical' : `${check.differing} steps differ`,
    ]);
    result[`regenerate_${regenerate}`] = {
      naiveSeconds: naive.seconds,
      fastSeconds: fast.seconds,
      speedup: naive.seconds / fast.seconds,
      evaluated,
      cells,
      boundSeconds: bound,
      passBoundSeconds: passes2,
      overBound: fast.seconds / bound,
      identical: check.identical,
    };
  }
  console.log(
    markdownTable(
      [
        'analysis',
        'naive',
        'ours',
        'speed-up',
        'models evaluated',
        'FLOP bound',
        'ours / FLOP bound',
        'pass bound',
        'ours / pass bound',
        'results',
      ],
      rows,
    ),
  );
  console.log(
    '\nFLOP bound: per distinct filtered model, regenerate false = the layers downstream of the ablated one on ' +
      'the clean and adversarial sets (2n forward); regenerate true = input gradient (≈ 2 forward) + forward of ' +
      'the new adversarial set, on n; plus the reference (4 forward on n). Naive evaluates every cell with ' +
      'the whole model: false = 2 forward, true = 1 + 2 + 1 forward per cell. The pass bound counts the same ' +
      'passes at the measured time of a forward pass and of an input gradient of this model on this backend ' +
      '(small convolutions run far below the matmul rate).',
  );
  const full = forwardFlops(model.layers);
  console.log(
    `forward FLOPs per example ${(full / 1e6).toFixed(2)} M; with regenerate true the arithmetic caps the ` +
      `speed-up at (4 × cells) / (3 × evaluated + 4) ≈ ${(
        (4 * fast3(result).cells) /
        (3 * fast3(result).evaluated + 4)
      ).toFixed(2)}×`,
  );

  const base = measureMemory('base', examples, steps);
  const trainPeak = measureMemory('train', examples, steps);
  const analysisPeak = measureMemory('analysis', examples, steps);
  const memRatio = (analysisPeak - base) / (trainPeak - base);
  console.log(
    `\npeak resident memory above a process that only loads model and data (${base.toFixed(0)} MiB): ` +
      `training epoch (batch 100) +${(trainPeak - base).toFixed(0)} MiB, analysis +${(analysisPeak - base).toFixed(0)} MiB ` +
      `→ ${memRatio.toFixed(2)}× a training step's`,
  );
  result.memory = {
    baseMiB: base,
    trainPeakMiB: trainPeak,
    analysisPeakMiB: analysisPeak,
    ratio: memRatio,
  };
  console.log(`\nwritten ${writeResult('analysis', result)}`);
  tf.dispose([data.xs, data.ys, train.xs, train.ys]);
  model.dispose();
}

function fast3(result: Record<string, unknown>): { cells: number; evaluated: number } {
  return result.regenerate_true as { cells: number; evaluated: number };
}

export const bench: Bench = {
  name: 'analysis',
  description:
    'analysis engine vs the naive sweep: identical results, speed-up, FLOP bound, memory',
  run,
};

if (require.main === module) {
  const argv = process.argv.slice(2);
  const task =
    argv[0] === '--memory-child'
      ? memoryChild(argv[1], Number(argv[2]), Number(argv[3]))
      : run(argv);
  task.catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  });
}
