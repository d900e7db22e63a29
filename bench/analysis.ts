/**
 * `npm run bench -- analysis`: the analysis engine (the batched sweep) against the naive sweep
 * and against a naive PyTorch peer sweep (bench/torch/analysis_bench.py), on the small CNN and
 * ResNet-18 (width 0.25), both `regenerate` settings, in the same run. Checks that ours and the
 * naive sweep give identical results, prints our time against the FLOP bound (the
 * forward/backward work the analysis cannot avoid, at the matmul rate measured in this run) and
 * against the peer, issue 20's targets with their arithmetic, and the peak memory.
 */
import * as cp from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
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
import { buildModel, type ModelName } from '../src/models';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';
import { intArg, parseArgs, type Bench } from './lib/bench';
import { projectRoot, venvPython } from './lib/python';
import { matmulGflops } from './cnn/flops';
import { writeResult } from './lib/results';
import { markdownTable, ratio, seconds } from './lib/table';

interface BenchModel {
  name: ModelName;
  width?: number;
  inputShape: [number, number, number];
}

/** Issue 20's models: the small CNN and ResNet-18 at width 0.25, on 28×28 digits. */
const MODELS: Record<string, BenchModel> = {
  small_cnn: { name: 'small_cnn', inputShape: [28, 28, 1] },
  resnet18: { name: 'resnet18', width: 0.25, inputShape: [28, 28, 1] },
};

/** Examples per batch when timing each layer's product kernels (the size of a batched pass). */
const KERNEL_EXAMPLES = 1024;
/** Filtering steps of the untimed warm-up analysis before the timed one. */
const WARMUP_STEPS = 3;

/** Issue 20's targets: ours ≤ 2× the FLOP bound and ≤ 0.5× the PyTorch peer sweep. */
const TARGETS = { overBound: 2, overPeer: 0.5 };

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

/** What the analysis' passes cost in one unit (FLOPs or seconds), over the n examples. */
interface PassCost {
  /** A forward pass through `layers`. */
  forward(layers: tf.layers.Layer[]): number;
  /** One input gradient of the whole model (forward plus a data-gradient backward). */
  gradient: number;
}

/**
 * The work an analysis cannot avoid, at `cost`: the reference (a forward pass of the clean set,
 * an input gradient and a forward pass of the adversarial set), then for each distinct filtered
 * model: with `regenerate: false` the layers downstream of the ablated one on the clean and
 * adversarial sets; with `regenerate: true` an input gradient of the whole model (which also
 * yields clean accuracy) and a forward pass of the new adversarial set.
 */
function unavoidableWork(
  model: tf.LayersModel,
  report: AnalysisReport,
  regenerate: boolean,
  cost: PassCost,
): number {
  const runner = new GraphRunner(model);
  const params = selectParameters(model);
  const full = cost.forward(model.layers);
  let total = 2 * full + cost.gradient;
  report.parameters.forEach((p, i) => {
    if (regenerate) {
      total += p.evaluated * (cost.gradient + full);
    } else {
      const suffix = runner.split(params[i].layer).suffix.map((node) => node.layer);
      total += p.evaluated * 2 * cost.forward(suffix);
    }
  });
  return total;
}

/** FLOPs: a data-gradient backward ≈ one more forward. The FLOP bound is these at the matmul rate. */
function flopCost(model: tf.LayersModel, n: number): PassCost {
  return {
    forward: (layers) => forwardFlops(layers) * n,
    gradient: 2 * forwardFlops(model.layers) * n,
  };
}

/**
 * Seconds at the measured time of one forward pass and one FGSM input gradient of the model over
 * the n examples (the pass bound); downstream-only passes scaled by their share of the FLOPs.
 */
function passCost(model: tf.LayersModel, passes: { forward: number; gradient: number }): PassCost {
  const full = forwardFlops(model.layers);
  return {
    forward: (layers) => (passes.forward * forwardFlops(layers)) / full,
    gradient: passes.gradient,
  };
}

/** Seconds per example of the backend's own product kernels for one layer (bias, activation apart). */
interface LayerKernelTimes {
  layer: string;
  /** The forward product (Conv2D, or MatMul for Dense). */
  forward: number;
  /** The input gradient (Conv2DBackpropInput, or the transposed MatMul). */
  inputGradient: number;
  /** Forward FLOPs per example, to print the rate the kernel reaches. */
  flops: number;
}

/**
 * Times, for every Conv2D and Dense layer, the backend's own convolution / matrix-product kernel
 * on a batch of `examples` random inputs of the layer's input shape: the forward product and the
 * input gradient, per example. A batch as large as the sweep's passes, so that the kernels run
 * in their efficient regime.
 */
async function layerKernelTimes(
  model: tf.LayersModel,
  examples: number,
): Promise<LayerKernelTimes[]> {
  const rows: LayerKernelTimes[] = [];
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    if (kind !== 'Conv2D' && kind !== 'Dense') continue;
    const kernel = layer.getWeights()[0];
    const inShape = [examples, ...((layer.input as tf.SymbolicTensor).shape as number[]).slice(1)];
    const outShape = [examples, ...(layer.outputShape as number[]).slice(1)];
    const x = tf.randomNormal(inShape);
    const dy = tf.randomNormal(outShape);
    const config = layer.getConfig();
    const strides = (config.strides as [number, number] | undefined) ?? [1, 1];
    const pad = (config.padding as 'same' | 'valid' | undefined) ?? 'valid';
    const forward = () =>
      kind === 'Conv2D'
        ? tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, strides, pad)
        : tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D);
    const backward = () =>
      kind === 'Conv2D'
        ? tf.conv2dTranspose(
            dy as tf.Tensor4D,
            kernel as tf.Tensor4D,
            inShape as [number, number, number, number],
            strides,
            pad,
          )
        : tf.matMul(dy as tf.Tensor2D, kernel as tf.Tensor2D, false, true);
    // Reads one value of the output: enough to wait for the kernel on any backend, without
    // timing a copy of the whole output to JavaScript (44 MB for the small CNN's conv1 on 1,024
    // examples, which took most of the 37.5 µs/example once measured for its forward product).
    const time = async (f: () => tf.Tensor) =>
      (
        await timeIt(
          () =>
            tf.tidy(() => {
              tf.slice(tf.reshape(f(), [-1]), 0, 1).dataSync();
            }),
          { warmup: 1, repeats: 3 },
        )
      ).median / examples;
    rows.push({
      layer: layer.name,
      forward: await time(forward),
      inputGradient: await time(backward),
      flops: 2 * layerMacs(layer),
    });
    tf.dispose([x, dy]);
  }
  return rows;
}

/**
 * Seconds at the speed of the backend's own product kernels on these shapes (layerKernelTimes):
 * each layer's forward product and input gradient at its measured time instead of its FLOPs at
 * the 1024² matmul rate. Nothing else (bias, activations, pooling, batch norm) is counted: with
 * {@link unavoidableWork}, the kernel bound, the time our sweep could reach with these kernels if
 * everything around them were free.
 */
function kernelCost(model: tf.LayersModel, n: number, times: LayerKernelTimes[]): PassCost {
  const byName = new Map(times.map((t) => [t.layer, t]));
  const sum = (layers: tf.layers.Layer[], pick: (t: LayerKernelTimes) => number) =>
    layers.reduce((s, l) => {
      const t = byName.get(l.name);
      return s + (t ? pick(t) : 0);
    }, 0);
  const forward = (layers: tf.layers.Layer[]) => sum(layers, (t) => t.forward) * n;
  return {
    forward,
    gradient: forward(model.layers) + sum(model.layers, (t) => t.inputGradient) * n,
  };
}

async function passTimes(
  model: tf.LayersModel,
  data: { xs: tf.Tensor; ys: tf.Tensor },
): Promise<{ forward: number; gradient: number }> {
  // The fastest forward pass we have: the graph runner the analysis itself uses.
  const runner = new GraphRunner(model);
  const forward = await timeIt(
    () =>
      tf.tidy(() => {
        runner.predict(data.xs).dataSync();
      }),
    {
      warmup: 1,
      repeats: 5,
    },
  );
  const gradient = await timeIt(
    () =>
      tf.tidy(() => {
        fgsm(model, data.xs, data.ys, 0.1).dataSync();
      }),
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
        if (JSON.stringify(o) !== JSON.stringify(s)) differing++;
      });
      // Scores and labels bit-identical too.
      const summary = (f: typeof other) => JSON.stringify({ scores: f?.scores, labels: f?.labels });
      if (summary(r) !== summary(other)) differing++;
    }
  });
  return { identical: differing === 0, differing };
}

function peakRssMiB(): number {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function setup(
  spec: BenchModel,
  examples: number,
): Promise<{
  model: tf.LayersModel;
  data: { xs: tf.Tensor; ys: tf.Tensor };
  train: { xs: tf.Tensor; ys: tf.Tensor };
}> {
  await initBackend({ log: () => undefined });
  const { train, test } = loadBuiltinMnist({ trainSize: 2000, testSize: examples, seed: 7 });
  const model = buildModel(spec.name, {
    inputShape: spec.inputShape,
    classes: 10,
    width: spec.width,
    seed: 7,
  });
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'categoricalCrossentropy' });
  return { model, data: test, train };
}

/** In a child process: one kind of work, then the process's peak resident memory. */
async function memoryChild(
  kind: string,
  modelKey: string,
  examples: number,
  steps: number,
): Promise<void> {
  const { model, data, train } = await setup(MODELS[modelKey], examples);
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

function measureMemory(kind: string, modelKey: string, examples: number, steps: number): number {
  const out = cp.execFileSync(
    process.execPath,
    [__filename, '--memory-child', kind, modelKey, String(examples), String(steps)],
    { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } },
  );
  return (JSON.parse(out.trim().split('\n').pop() as string) as { peakMiB: number }).peakMiB;
}

/** The PyTorch peer sweep's seconds (same architecture, sizes, K, threads), or why there is none. */
function peerSweep(
  spec: BenchModel,
  examples: number,
  steps: number,
  regenerate: boolean,
): { seconds?: number; cells?: number; threads?: number; error?: string } {
  const python = venvPython();
  if (!python) return { error: 'no .venv (node scripts/setup.js --torch)' };
  const peer = {
    model: spec.name,
    width: spec.width ?? 1,
    input: spec.inputShape,
    examples,
    steps,
    regenerate,
    epsilon: 0.1,
    batch: 256,
    threads: os.cpus().length,
  };
  try {
    const out = cp.execFileSync(
      python,
      [`${projectRoot()}/bench/torch/analysis_bench.py`, JSON.stringify(peer)],
      { encoding: 'utf8' },
    );
    return JSON.parse(out.trim().split('\n').pop() as string) as { seconds: number };
  } catch (err) {
    return { error: (err instanceof Error ? err.message : String(err)).split('\n')[0] };
  }
}

interface Row {
  model: string;
  regenerate: boolean;
  naiveSeconds?: number;
  oursSeconds: number;
  evaluated: number;
  cells: number;
  boundSeconds: number;
  kernelBoundSeconds: number;
  passBoundSeconds: number;
  /** The matmul rate (GFLOP/s) the FLOP bound uses: {@link boundRate} of the two measured. */
  matmulGflops: number;
  /** The matmul rate measured right before and right after this row's timed runs. */
  matmulGflopsMeasured: [number, number];
  peerSeconds?: number;
  peerError?: string;
  identical?: boolean;
}

/** What {@link benchSetting} needs of its model's run. */
interface SettingContext {
  key: string;
  spec: BenchModel;
  model: tf.LayersModel;
  data: { xs: tf.Tensor; ys: tf.Tensor };
  passes: { forward: number; gradient: number };
  steps: number;
  naive: boolean;
  repeats: number;
}

/**
 * One `regenerate` setting of one model: ours (the median of `repeats` timed runs after an
 * untimed warm-up), the naive sweep, the PyTorch peer, and the bounds at rates measured right
 * before ours is timed.
 */
async function benchSetting(
  c: SettingContext,
  regenerate: boolean,
): Promise<{ row: Row; kernels: LayerKernelTimes[] }> {
  const { model, data, steps, repeats } = c;
  const options: AnalyzeOptions = { epsilon: 0.1, steps, regenerate, batchSize: 256 };
  // Warm-up, untimed (the peer does the same): kernels' first calls, allocator.
  await analyze(model, data, { ...options, steps: WARMUP_STEPS });
  // This machine's speed drifts by tens of percent within minutes, so the rates the bounds use
  // are measured again right before the timed runs.
  const rate = await matmulGflops(1024, 5);
  const kernels = await layerKernelTimes(model, KERNEL_EXAMPLES);
  const runs: AnalysisReport[] = [];
  for (let r = 0; r < repeats; r++) runs.push(await analyze(model, data, options));
  const ours = [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(repeats / 2)];
  // Measured again after: a rate caught in a slow phase would lengthen the bound and flatter
  // the ratio, so the bound takes the faster of the two.
  const rates = [rate, await matmulGflops(1024, 5)] as [number, number];
  const reference = c.naive
    ? await analyze(model, data, { ...options, strategy: 'naive' })
    : undefined;
  const peer = peerSweep(c.spec, data.xs.shape[0], steps, regenerate);
  const work = (cost: PassCost) => unavoidableWork(model, ours, regenerate, cost);
  const row: Row = {
    model: c.key,
    regenerate,
    naiveSeconds: reference?.seconds,
    oursSeconds: ours.seconds,
    evaluated: ours.parameters.reduce((sum, p) => sum + p.evaluated, 0),
    cells: ours.parameters.length * 3 * steps,
    boundSeconds: work(flopCost(model, ours.examples)) / (boundRate(rates) * 1e9),
    kernelBoundSeconds: work(kernelCost(model, ours.examples, kernels)),
    matmulGflops: boundRate(rates),
    matmulGflopsMeasured: rates,
    passBoundSeconds: work(passCost(model, c.passes)),
    peerSeconds: peer.seconds,
    peerError: peer.error,
    identical: reference ? sameResults(ours, reference).identical : undefined,
  };
  return { row, kernels };
}

/** One model: ours, the naive sweep and the peer, both regenerate settings. */
async function benchModel(
  key: string,
  examples: number,
  steps: number,
  naive: boolean,
  repeats: number,
): Promise<{
  rows: Row[];
  gflops: number;
  kernels: LayerKernelTimes[];
  memory: Record<string, number>;
}> {
  const spec = MODELS[key];
  const { model, data, train } = await setup(spec, examples);
  await model.fit(train.xs, train.ys, { epochs: 1, batchSize: 100, verbose: 0 });
  const passes = await passTimes(model, data);
  console.log(
    `${key}: ${spec.name}${spec.width ? ` width ${spec.width}` : ''} at ${spec.inputShape.join('×')} ` +
      `(${model.countParams()} weights), trained 1 epoch on 2,000 digits; ${examples} held-out digits, ` +
      `K = ${steps}, 3 filters, backend ${tf.getBackend()}; forward ${(passes.forward * 1000).toFixed(1)} ms, ` +
      `FGSM gradient ${(passes.gradient * 1000).toFixed(1)} ms over the ${examples} digits`,
  );
  const context: SettingContext = { key, spec, model, data, passes, steps, naive, repeats };
  const fixed = await benchSetting(context, false);
  const regenerated = await benchSetting(context, true);
  tf.dispose([data.xs, data.ys, train.xs, train.ys]);
  model.dispose();
  const base = measureMemory('base', key, examples, steps);
  const trainPeak = measureMemory('train', key, examples, steps);
  const analysisPeak = measureMemory('analysis', key, examples, steps);
  const gflops = fixed.row.matmulGflops;
  printKernelTimes(fixed.kernels, gflops);
  return {
    rows: [fixed.row, regenerated.row],
    gflops,
    kernels: fixed.kernels,
    memory: { baseMiB: base, trainPeakMiB: trainPeak, analysisPeakMiB: analysisPeak },
  };
}

/**
 * The matmul rate a row's FLOP bound uses, of those measured before and after its timed runs: the
 * faster, so that a slow moment cannot make the bound long and a ratio look met.
 */
export function boundRate(measured: [number, number]): number {
  return Math.max(...measured);
}

/** What {@link targetText} reads of a row. */
export type TargetRow = Pick<
  Row,
  'oursSeconds' | 'boundSeconds' | 'kernelBoundSeconds' | 'peerSeconds'
>;

/**
 * Whether a row meets issue 20's targets, with the arithmetic where one is beyond a bound:
 * ≤ 2× the FLOP bound, unless the backend's own product kernels need more than that for the
 * same work (the kernel bound), in which case the kernel bound is the goal; ≤ 0.5× the peer,
 * unless that is below the bound, in which case the bound is the goal.
 */
export function targetText(row: TargetRow): string {
  const overBound = row.oursSeconds / row.boundSeconds;
  const kernelOverBound = row.kernelBoundSeconds / row.boundSeconds;
  const parts = [
    `≤ ${TARGETS.overBound}× bound: ${overBound <= TARGETS.overBound ? 'met' : 'not met'} (${ratio(overBound)})`,
  ];
  if (kernelOverBound > TARGETS.overBound) {
    const overKernel = row.oursSeconds / row.kernelBoundSeconds;
    parts.push(
      `the backend's product kernels alone need ${seconds(row.kernelBoundSeconds)} = ${ratio(kernelOverBound)} the bound ` +
        `(> ${TARGETS.overBound}×: beyond them), goal = kernel bound: ${overKernel <= 1 ? 'met' : 'not met'} (${ratio(overKernel)})`,
    );
  }
  if (row.peerSeconds !== undefined) {
    const target = TARGETS.overPeer * row.peerSeconds;
    const floor = Math.max(row.boundSeconds, row.kernelBoundSeconds);
    if (target < floor) {
      parts.push(
        `${TARGETS.overPeer}× peer = ${seconds(target)} < bound ${seconds(floor)}: beyond the bound, ` +
          `goal = bound: ${row.oursSeconds <= floor ? 'met' : 'not met'}`,
      );
    } else {
      const overPeer = row.oursSeconds / row.peerSeconds;
      parts.push(
        `≤ ${TARGETS.overPeer}× peer: ${overPeer <= TARGETS.overPeer ? 'met' : 'not met'} (${ratio(overPeer)})`,
      );
    }
  }
  return parts.join('; ');
}

/** Each layer's product kernels: time per example and the rate they reach. */
function printKernelTimes(kernels: LayerKernelTimes[], gflops: number): void {
  const rate = (flops: number, s: number) => `${(flops / s / 1e9).toFixed(1)} GFLOP/s`;
  console.log(
    `  product kernels on ${KERNEL_EXAMPLES} examples, before the regenerate: false runs (matmul 1024²: ${gflops.toFixed(1)} GFLOP/s): ` +
      kernels
        .map(
          (k) =>
            `${k.layer} forward ${(k.forward * 1e6).toFixed(2)} µs/example (${rate(k.flops, k.forward)}), ` +
            `input gradient ${(k.inputGradient * 1e6).toFixed(2)} µs (${rate(k.flops, k.inputGradient)})`,
        )
        .join('; '),
  );
}

async function run(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['examples', 'steps', 'naive', 'model', 'repeats']);
  const examples = intArg(args, 'examples', 128);
  const steps = intArg(args, 'steps', 25);
  const repeats = intArg(args, 'repeats', 3);
  const naiveArg = args.get('naive') ?? '1';
  if (naiveArg !== '0' && naiveArg !== '1') {
    throw new Error(`--naive must be 0 (skip the naive sweep) or 1; got '${naiveArg}'`);
  }
  const naive = naiveArg === '1';
  const keys = args.has('model') ? [args.get('model') as string] : Object.keys(MODELS);
  for (const k of keys) {
    if (!MODELS[k])
      throw new Error(`--model must be one of ${Object.keys(MODELS).join(', ')}; got ${k}`);
  }
  const rows: Row[] = [];
  const result: Record<string, unknown> = { examples, steps, models: {} };
  for (const key of keys) {
    const out = await benchModel(key, examples, steps, naive, repeats);
    rows.push(...out.rows);
    (result.models as Record<string, unknown>)[key] = out;
    const m = out.memory;
    console.log(
      `  peak resident memory: ${m.baseMiB.toFixed(0)} MiB loading model and data; training epoch (batch 100) ` +
        `+${(m.trainPeakMiB - m.baseMiB).toFixed(0)} MiB; analysis (both regenerate settings) ` +
        `+${(m.analysisPeakMiB - m.baseMiB).toFixed(0)} MiB\n`,
    );
  }
  const opt = (v: number | undefined, f: (x: number) => string) =>
    v === undefined ? undefined : f(v);
  console.log(
    markdownTable(
      [
        'model',
        'regenerate',
        'naive',
        'ours',
        'models evaluated',
        'matmul GFLOP/s before / after',
        'FLOP bound',
        'ours / bound',
        'kernel bound',
        'ours / kernel bound',
        'pass bound',
        'PyTorch peer',
        'ours / peer',
        'results',
      ],
      rows.map((r) => [
        r.model,
        String(r.regenerate),
        opt(r.naiveSeconds, seconds),
        seconds(r.oursSeconds),
        `${r.evaluated}/${r.cells}`,
        r.matmulGflopsMeasured.map((g) => g.toFixed(0)).join(' / '),
        seconds(r.boundSeconds),
        ratio(r.oursSeconds / r.boundSeconds),
        seconds(r.kernelBoundSeconds),
        ratio(r.oursSeconds / r.kernelBoundSeconds),
        seconds(r.passBoundSeconds),
        r.peerSeconds === undefined ? (r.peerError ?? undefined) : seconds(r.peerSeconds),
        opt(r.peerSeconds, (p) => ratio(r.oursSeconds / p)),
        r.identical === undefined ? 'not checked' : r.identical ? 'identical' : 'DIFFER',
      ]),
    ),
  );
  console.log("\nIssue 20's targets:");
  for (const r of rows) console.log(`  ${r.model}, regenerate ${r.regenerate}: ${targetText(r)}`);
  console.log(
    '\nFLOP bound: per distinct filtered model, regenerate false = the layers downstream of the ablated one on ' +
      'the clean and adversarial sets (2n forward); regenerate true = input gradient (≈ 2 forward) + forward of ' +
      'the new adversarial set, on n; plus the reference (4 forward on n), at the faster of the matmul rates measured right before ' +
      "and right after that row's timed runs (the product kernels right before; the per-layer times printed are those before the regenerate: false runs). The pass " +
      'bound counts the same passes at the measured time of one forward pass and one input gradient of the model ' +
      "over the n digits (unbatched). The kernel bound counts the same work at the speed of the backend's own " +
      `convolution / matrix-product kernels on these layers (forward and input gradient, timed on ${KERNEL_EXAMPLES} examples), ` +
      'nothing else: where it exceeds 2× the FLOP bound, the 2× target is beyond those kernels. Both sides run an ' +
      `untimed warm-up first (ours: a ${WARMUP_STEPS}-step analysis; the peer: one attack and forward pass); ours is the ` +
      `median of ${repeats} timed runs (--repeats), the naive sweep and the peer one run each. The PyTorch peer evaluates every cell of every conv/linear weight naively ` +
      `(FGSM regenerated per filtered model when regenerate), on random inputs of the same shape, ${os.cpus().length} threads.`,
  );
  result.rows = rows;
  console.log(`\nwritten ${writeResult('analysis', result)}`);
}

export const bench: Bench = {
  name: 'analysis',
  description:
    'analysis engine (batched sweep) vs the naive sweep and a naive PyTorch peer sweep: identical results, FLOP bound, issue 20 targets, memory',
  run,
};

if (require.main === module) {
  const argv = process.argv.slice(2);
  const task =
    argv[0] === '--memory-child'
      ? memoryChild(argv[1], argv[2], Number(argv[3]), Number(argv[4]))
      : run(argv);
  task.catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  });
}
