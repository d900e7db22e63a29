/**
 * `bench/models`: training throughput (images per second) of the paper's ResNet-18 and
 * ShuffleNet V2 x1.0 at CIFAR-10 size (32×32×3, 10 classes), tfjs (the active backend) against
 * PyTorch running torchvision-equivalent definitions (`bench/torch/models_bench.py`), same batch
 * (100, the paper's), Adam, cross-entropy, in the same run. Steps alternate between the two
 * frameworks, so both see the same machine load; the ratio is the median of paired ratios.
 * PyTorch runs with `OMP_WAIT_POLICY=PASSIVE` unless the variable is set (see below).
 *
 * Standalone: `node dist/bench/models.js [--batch=100] [--steps=2] [--repeats=3] [--warmup=1]
 * [--no-torch] [--fast-kernels]`.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { buildModel, ModelName } from '../src/models';
import { Bench, intArg, parseArgs } from './lib/bench';
import { registerFastTensorflowKernels } from './lib/native-speedups';
import { PythonWorker, venvPython } from './lib/python';
import { writeResult } from './lib/results';
import { formatNumber, markdownTable, ratio } from './lib/table';
import { median } from './lib/timing';

/** Options of {@link runModelsBench}. */
export interface ModelsBenchOptions {
  /** Models to time; default ResNet-18 and ShuffleNet V2 x1.0. */
  models?: ModelName[];
  /** Images per training step; default 100 (the paper's batch). */
  batch?: number;
  /** Training steps per timed repeat; default 2. */
  steps?: number;
  /** Timed repeats per framework (alternating); default 3. */
  repeats?: number;
  /** Untimed steps per framework first; default 1. */
  warmup?: number;
  /** Time PyTorch too (needs `.venv` with torch); default: when `.venv/bin/python` exists. */
  torch?: boolean;
  /**
   * Register the faster native kernels of `bench/lib/native-speedups.ts` (ReLU gradient as two
   * native ops) for the tfjs runs; default false (tfjs-node's own kernels).
   */
  fastKernels?: boolean;
}

/** One model's result. */
export interface ModelsBenchRow {
  model: string;
  /** Trainable parameters at this input size (tfjs), equal to PyTorch's count. */
  params: number;
  tfjs: { imagesPerSecond: number; samples: number[] };
  torch?: { imagesPerSecond: number; samples: number[] };
  /** Median over repeats of tfjs step time ÷ PyTorch step time (> 1: tfjs slower). */
  timeRatio?: number;
}

/** What {@link runModelsBench} measured. */
export interface ModelsBenchResult {
  backend: string;
  /** Whether `bench/lib/native-speedups.ts` kernels were registered for the tfjs runs. */
  fastKernels: boolean;
  torch?: { version: string; threads: number };
  config: {
    input: [number, number, number];
    classes: number;
    batch: number;
    steps: number;
    repeats: number;
    warmup: number;
  };
  rows: ModelsBenchRow[];
  /** The Markdown table for the README. */
  table: string;
}

const INPUT: [number, number, number] = [32, 32, 3];
const CLASSES = 10;

/** Runs the bench and returns its result (also printed by the standalone entry point). */
export async function runModelsBench(options: ModelsBenchOptions = {}): Promise<ModelsBenchResult> {
  const backend = await initBackend();
  const models = options.models ?? ['resnet18', 'shufflenet_v2_x1_0'];
  const config = {
    input: INPUT,
    classes: CLASSES,
    batch: options.batch ?? 100,
    steps: options.steps ?? 2,
    repeats: options.repeats ?? 3,
    warmup: options.warmup ?? 1,
  };
  const useTorch = options.torch ?? venvPython() !== undefined;
  let worker: PythonWorker | undefined;
  let torchInfo: ModelsBenchResult['torch'];
  if (useTorch) {
    const spec = JSON.stringify({ batch: config.batch, input: INPUT, classes: CLASSES, width: 1 });
    // PyTorch's OpenMP threads spin while waiting; on a shared machine that collapses its
    // speed (measured here: 3–8× slower under load). Passive waiting is fair to both frameworks.
    const env = { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
    const started = await PythonWorker.start<{ torch: string; threads: number }>(
      'bench/torch/models_bench.py',
      ['worker', spec],
      env,
    );
    worker = started.worker;
    torchInfo = { version: started.greeting.torch, threads: started.greeting.threads };
  }
  const rows: ModelsBenchRow[] = [];
  const restoreKernels = options.fastKernels ? registerFastTensorflowKernels() : undefined;
  try {
    for (const name of models) {
      rows.push(await benchOne(name, config, worker));
    }
  } finally {
    restoreKernels?.();
    await worker?.stop();
  }
  const table = markdownTable(
    [
      'model (CIFAR-10 size, batch ' + config.batch + ')',
      `tfjs ${backend.id} (images/s)`,
      'PyTorch (images/s)',
      'tfjs time ÷ PyTorch',
    ],
    rows.map((r) => [
      r.model,
      r.tfjs.imagesPerSecond,
      r.torch?.imagesPerSecond,
      r.timeRatio === undefined ? undefined : ratio(r.timeRatio),
    ]),
  );
  return {
    backend: backend.id,
    fastKernels: options.fastKernels ?? false,
    torch: torchInfo,
    config,
    rows,
    table,
  };
}

async function benchOne(
  name: ModelName,
  config: ModelsBenchResult['config'],
  worker: PythonWorker | undefined,
): Promise<ModelsBenchRow> {
  const model = buildModel(name, { inputShape: INPUT, classes: CLASSES, seed: 0 });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const { xs, ys } = tf.tidy(() => ({
    xs: tf.randomNormal([config.batch, ...INPUT], 0, 1, 'float32', 1),
    ys: tf.oneHot(tf.randomUniform([config.batch], 0, CLASSES, 'int32', 2), CLASSES),
  }));
  const tfjsSteps = async (n: number) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await model.trainOnBatch(xs, ys);
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  const torchSteps = async (n: number) =>
    (await (worker as PythonWorker).ask<{ seconds: number }>(`steps ${n}`)).seconds;
  try {
    if (worker) await worker.ask(`load ${name}`);
    await tfjsSteps(config.warmup);
    if (worker) await torchSteps(config.warmup);
    const tfjsSamples: number[] = [];
    const torchSamples: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < config.repeats; r++) {
      const ours = (await tfjsSteps(config.steps)) / config.steps;
      tfjsSamples.push(ours);
      if (worker) {
        const theirs = (await torchSteps(config.steps)) / config.steps;
        torchSamples.push(theirs);
        ratios.push(ours / theirs);
      }
      console.log(
        `  ${name} repeat ${r + 1}: tfjs ${formatNumber(ours)} s/step` +
          (worker ? `, PyTorch ${formatNumber(torchSamples[r])} s/step` : ''),
      );
    }
    const params = model.trainableWeights.reduce(
      (n, w) => n + w.shape.reduce<number>((a, d) => a * (d ?? 1), 1),
      0,
    );
    return {
      model: name,
      params,
      tfjs: { imagesPerSecond: config.batch / median(tfjsSamples), samples: tfjsSamples },
      torch: worker
        ? { imagesPerSecond: config.batch / median(torchSamples), samples: torchSamples }
        : undefined,
      timeRatio: worker ? median(ratios) : undefined,
    };
  } finally {
    tf.dispose([xs, ys]);
    model.dispose();
  }
}

function print(result: ModelsBenchResult): void {
  console.log(
    `\nbackend ${result.backend}${result.fastKernels ? ' with bench/lib/native-speedups kernels' : ''}` +
      (result.torch
        ? `; PyTorch ${result.torch.version} (${result.torch.threads} threads)`
        : '; PyTorch not run'),
  );
  console.log(result.table);
}

/** `bench/index.ts` entry: `node dist/bench/index.js models [--batch=…] [--steps=…] …`. */
export const bench: Bench = {
  name: 'models',
  description: 'ResNet-18 and ShuffleNet V2 training throughput at CIFAR size, tfjs vs PyTorch',
  async run(args: string[]) {
    const parsed = parseArgs(args, [
      'batch',
      'steps',
      'repeats',
      'warmup',
      'no-torch',
      'fast-kernels',
    ]);
    const result = await runModelsBench({
      batch: intArg(parsed, 'batch', 100),
      steps: intArg(parsed, 'steps', 2),
      repeats: intArg(parsed, 'repeats', 3),
      warmup: intArg(parsed, 'warmup', 1),
      torch: parsed.has('no-torch') ? false : undefined,
      fastKernels: parsed.has('fast-kernels'),
    });
    print(result);
    console.log(`\nwritten: ${writeResult('models', result)}`);
  },
};

if (require.main === module) {
  bench.run(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
