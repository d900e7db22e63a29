/**
 * `bench/models`: training throughput (images per second) of the paper's ResNet-18 and
 * ShuffleNet V2 x1.0 at CIFAR-10 size (32×32×3, 10 classes), tfjs (the active backend) against
 * PyTorch running torchvision-equivalent definitions (`bench/torch/models_bench.py`), same batch
 * (100, the paper's), Adam, cross-entropy, in the same run. Steps alternate between the two
 * frameworks, so both see the same machine load; the ratio is the median of paired ratios.
 * PyTorch runs with `OMP_WAIT_POLICY=PASSIVE` unless the variable is set (see below).
 *
 * The arithmetic: FLOPs of one training step (convolutions and the linear layer: forward, weight
 * gradient, input gradient except for the first layer's input; 2 FLOPs per multiply-add; nominal
 * as profilers count them, and in bounds: only kernel taps on the map, not its zero padding,
 * which is what the bound uses), the machine's float32 matrix-product rate measured in
 * the same run (the better of TensorFlow's and PyTorch's n×n GEMM), and so the time one step
 * would take if all its FLOPs ran at that rate (the bound). Each framework's step time ÷ bound
 * shows how far from the arithmetic it is; element-wise work (BatchNorm, ReLU, the optimizer)
 * is memory-bound and not in the bound.
 *
 * Standalone: `node dist/bench/models.js [--batch=100] [--steps=2] [--repeats=3] [--warmup=1]
 * [--no-torch] [--stock-kernels] [--matmul-size=1024] [--models=resnet18,shufflenet_v2_x1_0]`; `--stock-kernels` runs tfjs on
 * tfjs-node's own kernels and optimizer code, without the library's (`src/kernels/native/fast-kernels.ts`,
 * registered by `initBackend`; the model-level changes of `src/models` stay).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend';
import { buildModel, ModelName } from '../src/models';
import { Bench, intArg, parseArgs } from './lib/bench';
import { withoutFastTensorflowKernels } from './lib/native-speedups';
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
   * Run tfjs on tfjs-node's own kernels and optimizer code, without the library's faster ones
   * (`src/kernels/native/fast-kernels.ts`, which `initBackend` registers); default false.
   */
  stockKernels?: boolean;
  /** Size n of the n×n float32 matrix product that measures the machine's rate; default 1024. */
  matmulSize?: number;
}

/** FLOPs of one model's training step and the time they bound it to. */
export interface ModelsBenchArithmetic {
  /** FLOPs of one image's forward pass (convolutions and linear layers, 2 per multiply-add). */
  forwardFlopsPerImage: number;
  /** FLOPs of one training step of the batch: forward, weight and input gradients. */
  trainingFlopsPerStep: number;
  /**
   * The same, counting only kernel taps on the input map (not on zero padding): what the step
   * needs, and what the bound uses. At CIFAR size ResNet-18's last stages are 2×2 and 1×1 maps,
   * where most of a 3×3 kernel's taps fall on padding.
   */
  trainingFlopsPerStepInBounds: number;
  /** Seconds one step takes at the measured matrix-product rate: the FLOP bound. */
  boundSeconds: number;
  /** Images per second at the bound. */
  boundImagesPerSecond: number;
  /** tfjs step time ÷ bound. */
  tfjsOverBound: number;
  /** PyTorch step time ÷ bound. */
  torchOverBound?: number;
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
  /** The FLOP arithmetic of a training step. */
  arithmetic: ModelsBenchArithmetic;
}

/** The machine's float32 matrix-product rate, measured in the run. */
export interface MatmulRate {
  /** n of the n×n × n×n product. */
  n: number;
  /** GFLOP/s of TensorFlow's MatMul through tfjs. */
  tfjsGflops: number;
  /** GFLOP/s of `torch.mm`, when PyTorch ran. */
  torchGflops?: number;
  /** The better of the two: the rate the bound assumes. */
  gflops: number;
}

/** What {@link runModelsBench} measured. */
export interface ModelsBenchResult {
  backend: string;
  /** Whether the library's native kernels (`src/kernels/native/fast-kernels.ts`) were in effect. */
  fastKernels: boolean;
  /** The matrix-product rate the FLOP bounds use. */
  matmul: MatmulRate;
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
  /** The Markdown table of the FLOP arithmetic. */
  arithmeticTable: string;
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
  const restoreKernels = options.stockKernels ? withoutFastTensorflowKernels() : undefined;
  let matmul: MatmulRate;
  try {
    matmul = await measureMatmul(options.matmulSize ?? 1024, worker);
    for (const name of models) {
      rows.push(await benchOne(name, config, worker, matmul));
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
  const arithmeticTable = markdownTable(
    [
      'model',
      'GFLOP per training step (nominal)',
      'GFLOP in bounds',
      `bound at ${formatNumber(matmul.gflops)} GFLOP/s (images/s)`,
      'tfjs time ÷ bound',
      'PyTorch time ÷ bound',
    ],
    rows.map((r) => [
      r.model,
      formatNumber(r.arithmetic.trainingFlopsPerStep / 1e9),
      formatNumber(r.arithmetic.trainingFlopsPerStepInBounds / 1e9),
      r.arithmetic.boundImagesPerSecond,
      ratio(r.arithmetic.tfjsOverBound),
      r.arithmetic.torchOverBound === undefined ? undefined : ratio(r.arithmetic.torchOverBound),
    ]),
  );
  return {
    backend: backend.id,
    fastKernels: backend.id.startsWith('tensorflow') && !options.stockKernels,
    matmul,
    torch: torchInfo,
    config,
    rows,
    table,
    arithmeticTable,
  };
}

/** Kernel taps that fall inside a map of `size` along one axis, summed over output positions. */
function inBoundsTaps(size: number, out: number, kernel: number, stride: number, before: number) {
  let taps = 0;
  for (let o = 0; o < out; o++) {
    for (let t = 0; t < kernel; t++) {
      const at = o * stride - before + t;
      if (at >= 0 && at < size) taps += 1;
    }
  }
  return taps;
}

/**
 * One layer's multiply-adds per image (convolutions, depthwise convolutions, linear layers):
 * `nominal` as profilers count them (every tap of every output), `inBounds` only the taps that
 * fall on the input map rather than its zero padding (a `same` convolution's or a
 * `ZeroPadding2D` layer's just before it): the work the layer's arithmetic needs.
 */
function layerMacs(layer: tf.layers.Layer): { nominal: number; inBounds: number } {
  const cls = layer.getClassName();
  if (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D' && cls !== 'Dense') {
    return { nominal: 0, inBounds: 0 };
  }
  const inShape = (layer.input as tf.SymbolicTensor).shape as number[];
  const outShape = (layer.output as tf.SymbolicTensor).shape as number[];
  const inChannels = inShape[inShape.length - 1];
  if (cls === 'Dense') {
    const macs = inChannels * outShape[outShape.length - 1];
    return { nominal: macs, inBounds: macs };
  }
  const [, outH, outW, outChannels] = outShape;
  const conv = layer as unknown as { kernelSize: number[]; strides: number[]; padding: string };
  const [kh, kw] = conv.kernelSize;
  const [sh, sw] = conv.strides;
  // A depthwise convolution (multiplier 1) has one k×k filter per channel.
  const perTap = cls === 'DepthwiseConv2D' ? outChannels : inChannels * outChannels;
  let [, h, w] = inShape;
  let [top, left] = [0, 0];
  if (conv.padding === 'same') {
    const info = tf.backend_util.computeConv2DInfo(
      [1, h, w, inChannels],
      [kh, kw, inChannels, outChannels],
      [sh, sw],
      1,
      'same',
    );
    [top, left] = [info.padInfo.top, info.padInfo.left];
  }
  const source = layer.inboundNodes[0]?.inboundLayers[0];
  if (source?.getClassName() === 'ZeroPadding2D') {
    const padding = (source as unknown as { padding: [[number, number], [number, number]] })
      .padding;
    h -= padding[0][0] + padding[0][1];
    w -= padding[1][0] + padding[1][1];
    top += padding[0][0];
    left += padding[1][0];
  }
  return {
    nominal: outH * outW * kh * kw * perTap,
    inBounds: inBoundsTaps(h, outH, kh, sh, top) * inBoundsTaps(w, outW, kw, sw, left) * perTap,
  };
}

/** FLOPs of a model: per image forward, and per training step of `batch` images. */
export interface TrainingFlops {
  /** Forward pass per image, nominal (every tap counted, as profilers do). */
  forwardPerImage: number;
  /** Forward pass per image, in-bounds taps only. */
  forwardPerImageInBounds: number;
  /** Training step, nominal. */
  trainingPerStep: number;
  /** Training step, in-bounds taps only: the arithmetic the step needs. */
  trainingPerStepInBounds: number;
}

/**
 * FLOPs (2 per multiply-add) of a model's forward pass per image, and of a training step of
 * `batch` images: the forward pass, the weight gradients (as many FLOPs again) and the input
 * gradients (again, except for the first layer, whose input needs none).
 */
export function trainingFlops(model: tf.LayersModel, batch: number): TrainingFlops {
  const macs = model.layers.map(layerMacs);
  const total = (key: 'nominal' | 'inBounds') => {
    const forward = macs.reduce((a, m) => a + m[key], 0);
    const first = macs.find((m) => m[key] > 0)?.[key] ?? 0;
    return { forward: 2 * forward, training: 2 * batch * (3 * forward - first) };
  };
  const nominal = total('nominal');
  const inBounds = total('inBounds');
  return {
    forwardPerImage: nominal.forward,
    forwardPerImageInBounds: inBounds.forward,
    trainingPerStep: nominal.training,
    trainingPerStepInBounds: inBounds.training,
  };
}

/** The machine's float32 GEMM rate: TensorFlow's (through tfjs) and PyTorch's n×n product. */
async function measureMatmul(n: number, worker: PythonWorker | undefined): Promise<MatmulRate> {
  const flops = 2 * n ** 3;
  const reps = 10;
  const [a, b] = [
    tf.randomNormal([n, n], 0, 1, 'float32', 5),
    tf.randomNormal([n, n], 0, 1, 'float32', 6),
  ];
  const times: number[] = [];
  try {
    tf.matMul(a, b).dispose();
    for (let r = 0; r < 3; r++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < reps; i++) {
        const c = tf.matMul(a, b);
        await c.data();
        c.dispose();
      }
      times.push(Number(process.hrtime.bigint() - start) / 1e9 / reps);
    }
  } finally {
    tf.dispose([a, b]);
  }
  const tfjsGflops = flops / Math.min(...times) / 1e9;
  let torchGflops: number | undefined;
  if (worker) {
    const torchTimes: number[] = [];
    for (let r = 0; r < 3; r++) {
      const { seconds } = await worker.ask<{ seconds: number }>(`matmul ${n} ${reps}`);
      torchTimes.push(seconds / reps);
    }
    torchGflops = flops / Math.min(...torchTimes) / 1e9;
  }
  return { n, tfjsGflops, torchGflops, gflops: Math.max(tfjsGflops, torchGflops ?? 0) };
}

async function benchOne(
  name: ModelName,
  config: ModelsBenchResult['config'],
  worker: PythonWorker | undefined,
  matmul: MatmulRate,
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
    const flops = trainingFlops(model, config.batch);
    const boundSeconds = flops.trainingPerStepInBounds / (matmul.gflops * 1e9);
    return {
      model: name,
      params,
      tfjs: { imagesPerSecond: config.batch / median(tfjsSamples), samples: tfjsSamples },
      torch: worker
        ? { imagesPerSecond: config.batch / median(torchSamples), samples: torchSamples }
        : undefined,
      timeRatio: worker ? median(ratios) : undefined,
      arithmetic: {
        forwardFlopsPerImage: flops.forwardPerImage,
        trainingFlopsPerStep: flops.trainingPerStep,
        trainingFlopsPerStepInBounds: flops.trainingPerStepInBounds,
        boundSeconds,
        boundImagesPerSecond: config.batch / boundSeconds,
        tfjsOverBound: median(tfjsSamples) / boundSeconds,
        torchOverBound: worker ? median(torchSamples) / boundSeconds : undefined,
      },
    };
  } finally {
    tf.dispose([xs, ys]);
    model.dispose();
  }
}

function print(result: ModelsBenchResult): void {
  console.log(
    `\nbackend ${result.backend}` +
      (result.backend.startsWith('tensorflow')
        ? result.fastKernels
          ? ' with the library kernels (src/native)'
          : ' with tfjs-node stock kernels'
        : '') +
      (result.torch
        ? `; PyTorch ${result.torch.version} (${result.torch.threads} threads)`
        : '; PyTorch not run'),
  );
  console.log(result.table);
  const m = result.matmul;
  console.log(
    `\nFLOP arithmetic: float32 ${m.n}×${m.n} matrix product at ${formatNumber(m.tfjsGflops)} ` +
      `GFLOP/s (TensorFlow via tfjs)` +
      (m.torchGflops === undefined ? '' : `, ${formatNumber(m.torchGflops)} GFLOP/s (PyTorch)`) +
      `; bound = training FLOPs ÷ ${formatNumber(m.gflops)} GFLOP/s.`,
  );
  for (const r of result.rows) {
    const a = r.arithmetic;
    const stepMs = (imagesPerSecond: number) => (1000 * result.config.batch) / imagesPerSecond;
    console.log(
      `  ${r.model}: ${formatNumber(a.forwardFlopsPerImage / 1e6)} MFLOP forward per image; ` +
        `${formatNumber(a.trainingFlopsPerStep / 1e9)} GFLOP per step of ${result.config.batch} ` +
        `(${formatNumber(a.trainingFlopsPerStepInBounds / 1e9)} on the map, not its padding) ` +
        `÷ ${formatNumber(m.gflops)} GFLOP/s = ${formatNumber(1000 * a.boundSeconds)} ms ` +
        `(${formatNumber(a.boundImagesPerSecond)} images/s); tfjs ` +
        `${formatNumber(stepMs(r.tfjs.imagesPerSecond))} ms = ${ratio(a.tfjsOverBound)} bound` +
        (r.torch && a.torchOverBound !== undefined
          ? `; PyTorch ${formatNumber(stepMs(r.torch.imagesPerSecond))} ms = ` +
            `${ratio(a.torchOverBound)} bound`
          : ''),
    );
  }
  console.log(result.arithmeticTable);
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
      'stock-kernels',
      'matmul-size',
      'models',
    ]);
    const models = parsed.get('models');
    const result = await runModelsBench({
      models: models ? (models.split(',') as ModelName[]) : undefined,
      batch: intArg(parsed, 'batch', 100),
      steps: intArg(parsed, 'steps', 2),
      repeats: intArg(parsed, 'repeats', 3),
      warmup: intArg(parsed, 'warmup', 1),
      torch: parsed.has('no-torch') ? false : undefined,
      stockKernels: parsed.has('stock-kernels'),
      matmulSize: intArg(parsed, 'matmul-size', 1024),
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
