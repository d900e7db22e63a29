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
  passBoundSeconds: number;
  peerSeconds?: number;
  peerError?: string;
  identical?: boolean;
}

/** One model: ours, the naive sweep and the peer, both regenerate settings. */
async function benchModel(
  key: string,
  examples: number,
  steps: number,
  naive: boolean,
): Promise<{ rows: Row[]; gflops: number; memory: Record<string, number> }> {
  const spec = MODELS[key];
  const { model, data, train } = await setup(spec, examples);
  await model.fit(train.xs, train.ys, { epochs: 1, batchSize: 100, verbose: 0 });
  const gflops = await matmulGflops(1024, 5);
  const passes = await passTimes(model, data);
  console.log(
    `${key}: ${spec.name}${spec.width ? ` width ${spec.width}` : ''} at ${spec.inputShape.join('×')} ` +
      `(${model.countParams()} weights), trained 1 epoch on 2,000 digits; ${examples} held-out digits, ` +
      `K = ${steps}, 3 filters, backend ${tf.getBackend()}, matmul ${gflops.toFixed(1)} GFLOP/s ` +
      `(1024², float32); forward ${(passes.forward * 1000).toFixed(1)} ms, FGSM gradient ` +
      `${(passes.gradient * 1000).toFixed(1)} ms over the ${examples} digits`,
  );
  const rows: Row[] = [];
  for (const regenerate of [false, true]) {
    const options: AnalyzeOptions = { epsilon: 0.1, steps, regenerate, batchSize: 256 };
    const ours = await analyze(model, data, options);
    const reference = naive
      ? await analyze(model, data, { ...options, strategy: 'naive' })
      : undefined;
    const peer = peerSweep(spec, examples, steps, regenerate);
    rows.push({
      model: key,
      regenerate,
      naiveSeconds: reference?.seconds,
      oursSeconds: ours.seconds,
      evaluated: ours.parameters.reduce((s, p) => s + p.evaluated, 0),
      cells: ours.parameters.length * 3 * steps,
      boundSeconds: boundFlops(model, ours, regenerate) / (gflops * 1e9),
      passBoundSeconds: passBound(model, ours, regenerate, passes.forward, passes.gradient),
      peerSeconds: peer.seconds,
      peerError: peer.error,
      identical: reference ? sameResults(ours, reference).identical : undefined,
    });
  }
  tf.dispose([data.xs, data.ys, train.xs, train.ys]);
  model.dispose();
  const base = measureMemory('base', key, examples, steps);
  const trainPeak = measureMemory('train', key, examples, steps);
  const analysisPeak = measureMemory('analysis', key, examples, steps);
  return {
    rows,
    gflops,
    memory: { baseMiB: base, trainPeakMiB: trainPeak, analysisPeakMiB: analysisPeak },
  };
}

/** Whether a row meets issue 20's targets; where 0.5× the peer is beyond the bound, the bound is the goal. */
export function targetText(row: Row): string {
  const overBound = row.oursSeconds / row.boundSeconds;
  const parts = [
    `≤ ${TARGETS.overBound}× bound: ${overBound <= TARGETS.overBound ? 'met' : 'not met'} (${ratio(overBound)})`,
  ];
  if (row.peerSeconds !== undefined) {
    const target = TARGETS.overPeer * row.peerSeconds;
    if (target < row.boundSeconds) {
      parts.push(
        `${TARGETS.overPeer}× peer = ${seconds(target)} < bound ${seconds(row.boundSeconds)}: beyond the bound, ` +
          `goal = bound: ${row.oursSeconds <= row.boundSeconds ? 'met' : 'not met'}`,
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

async function run(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['examples', 'steps', 'naive', 'model']);
  const examples = intArg(args, 'examples', 128);
  const steps = intArg(args, 'steps', 25);
  const naive = intArg(args, 'naive', 1) === 1;
  const keys = args.has('model') ? [args.get('model') as string] : Object.keys(MODELS);
  for (const k of keys) {
    if (!MODELS[k])
      throw new Error(`--model must be one of ${Object.keys(MODELS).join(', ')}; got ${k}`);
  }
  const rows: Row[] = [];
  const result: Record<string, unknown> = { examples, steps, models: {} };
  for (const key of keys) {
    const out = await benchModel(key, examples, steps, naive);
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
        'FLOP bound',
        'ours / bound',
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
        seconds(r.boundSeconds),
        ratio(r.oursSeconds / r.boundSeconds),
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
      'the new adversarial set, on n; plus the reference (4 forward on n), at the measured matmul rate. The pass ' +
      'bound counts the same passes at the measured time of one forward pass and one input gradient of the model ' +
      'over the n digits (unbatched). The PyTorch peer evaluates every cell of every conv/linear weight naively ' +
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
