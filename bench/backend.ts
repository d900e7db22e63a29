/**
 * `bench/backend`: the speed yardstick. For the small CNN (`smallCnn()`) on real MNIST digits,
 * times one training epoch (2,000 digits, Adam, batch 100), one evaluation pass (1,000) and one
 * input-gradient pass (∂L/∂x from the logits, what FGSM costs; 1,000 in batches of 100 and in
 * one batch) on every tfjs backend available here, and on PyTorch running the same network on the
 * same digits in the same run; prints each time with its ratio to PyTorch, and the FLOP bound.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { BackendId, initBackend } from '../src/kernels/backend';
import { smallCnn } from '../src/models/small-cnn';
import { wasmThreading } from '../src/kernels/wasm/threads';
import { disposeSets, headOf, loadBenchDigits, writeDigitsFile } from './cnn/data';
import { convLayerTimes, convSecondsPerTask, type ConvLayerTimes } from './cnn/conv-time';
import { countMacs, matmulGflops, taskFlops, TaskFlops } from './cnn/flops';
import { compileForBench, evaluate, inputGradientSign, LabelledSet, trainEpoch } from './cnn/tasks';
import { Bench, intArg, parseArgs } from './lib/bench';
import { withoutFastTensorflowKernels } from './lib/native-speedups';
import { PythonWorker } from './lib/python';
import { writeResult } from './lib/results';
import { formatNumber, markdownTable, ratio, seconds } from './lib/table';
import { median } from './lib/timing';

/** The four timed tasks. */
export const TASKS = ['trainEpoch', 'evaluate', 'inputGradient', 'inputGradientOneBatch'] as const;
export type Task = (typeof TASKS)[number];

/** One measured cell: a median time, or why there is none. */
export interface Cell {
  /** Median seconds for the full task (extrapolated when `extrapolatedFrom` is set). */
  seconds?: number;
  /** The timed repeats in seconds (scaled up when extrapolated). */
  samples?: number[];
  /** PyTorch's time of the same task, measured just before each of `samples`. */
  torchSamples?: number[];
  /** Median over the repeats of (this repeat's time ÷ PyTorch's paired time). */
  ratio?: number;
  /** The number of examples actually timed, when the time was scaled up from a subset. */
  extrapolatedFrom?: number;
  /** Why no time was measured. */
  error?: string;
}

/** One column of the report: a backend, or PyTorch. */
export interface VariantResult {
  id: string;
  label: string;
  cells: Record<Task, Cell>;
  /** Measured float32 GFLOP/s of a 1024×1024 matmul (512 on `cpu`). */
  matmulGflops?: number;
  /** Threads of the backend's matrix products, where it says (wasm). */
  threads?: number;
  /** Seconds per task in the model's convolution kernels alone (wasm; see conv-time.ts). */
  convSeconds?: ReturnType<typeof convSecondsPerTask>;
  /** Those kernels per layer, per batch. */
  convLayers?: ConvLayerTimes[];
  notes: string[];
}

/** Sizes and repeat counts of a run. */
export interface BackendBenchConfig {
  trainSize: number;
  evalSize: number;
  batchSize: number;
  warmup: number;
  repeats: number;
  /** Examples timed on the pure-JS `cpu` backend (its times are scaled up). */
  cpuSubset: number;
  matmulSize: number;
  withTorch: boolean;
  /** tfjs variants to run (ids of {@link VARIANTS}). */
  variants: string[];
}

/** The defaults of `npm run bench backend`. */
export const DEFAULT_CONFIG: BackendBenchConfig = {
  trainSize: 2000,
  evalSize: 1000,
  batchSize: 100,
  // Two warm-ups: tfjs' first epochs run slower (JIT tiers, XNNPACK caches) than the steady
  // state a long training sees; nine paired repeats: a machine shared with others varies ±10%.
  warmup: 2,
  repeats: 9,
  cpuSubset: 100,
  matmulSize: 1024,
  withTorch: true,
  variants: ['tensorflow', 'tensorflow-stock', 'wasm', 'cpu'],
};

interface Variant {
  id: string;
  label: string;
  backend: BackendId;
  /** Registers kernels for this variant; returns an undo function, or a reason it cannot run. */
  setup?: () => (() => void) | string;
  /** Time on a subset and scale up (the slow pure-JS backend). */
  subset?: boolean;
}

/** The tfjs variants the bench knows, in report order. */
export const VARIANTS: readonly Variant[] = [
  {
    id: 'tensorflow',
    label: 'tfjs tensorflow (tfjs-node, our Step kernel)',
    backend: 'tensorflow',
  },
  {
    id: 'tensorflow-stock',
    label: "tfjs tensorflow (tfjs-node's own kernels)",
    backend: 'tensorflow',
    setup: withoutFastTensorflowKernels,
  },
  { id: 'wasm', label: 'tfjs wasm (with registerWasmKernels)', backend: 'wasm' },
  { id: 'cpu', label: 'tfjs cpu (pure JS)', backend: 'cpu', subset: true },
];

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/** A cell for an error: missing kernels are named as such. */
function errorCell(err: unknown): Cell {
  const text = firstLine(err);
  const missing = /Kernel '([^']+)' not registered/.exec(text);
  return { error: missing ? `n/a (kernel missing: ${missing[1]})` : `failed: ${text}` };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** PyTorch, as a worker that runs one task on request and answers its time. */
class TorchSide {
  readonly samples = new Map<Task, number[]>();
  constructor(
    readonly worker: PythonWorker,
    readonly greeting: TorchGreeting,
  ) {}

  async time(task: Task): Promise<number> {
    const { seconds } = await this.worker.ask<{ seconds: number }>(task);
    const list = this.samples.get(task) ?? [];
    list.push(seconds);
    this.samples.set(task, list);
    return seconds;
  }
}

/**
 * Times `fn` after `config.warmup` untimed runs; before each timed repeat, PyTorch runs the same
 * task, so that both see the same machine load (the machine may be shared), and the ratio is the
 * median of the paired ratios. With `scale`, one repeat on a subset, scaled up linearly.
 */
async function measure(
  task: Task,
  fn: () => Promise<unknown>,
  config: BackendBenchConfig,
  torch: TorchSide | undefined,
  scale?: { timed: number; full: number },
): Promise<Cell> {
  try {
    for (let i = 0; i < config.warmup; i++) await fn();
    const repeats = scale ? 1 : config.repeats;
    const factor = scale ? scale.full / scale.timed : 1;
    const samples: number[] = [];
    const torchSamples: number[] = [];
    for (let i = 0; i < repeats; i++) {
      if (torch) {
        // wasm's worker threads spin on after a run and would steal PyTorch's cores.
        await pause(SETTLE_MS);
        torchSamples.push(await torch.time(task));
        await pause(PAUSE_MS);
      }
      const start = process.hrtime.bigint();
      await fn();
      samples.push((Number(process.hrtime.bigint() - start) / 1e9) * factor);
      await pause(PAUSE_MS);
    }
    const cell: Cell = { seconds: median(samples), samples };
    if (torch) {
      cell.torchSamples = torchSamples;
      cell.ratio = median(samples.map((s, i) => s / torchSamples[i]));
    }
    if (scale) cell.extrapolatedFrom = scale.timed;
    return cell;
  } catch (err) {
    return errorCell(err);
  }
}

/** Idle time between timed runs, so that spinning worker threads of the last run settle. */
const PAUSE_MS = 20;

/** Idle time before each PyTorch sample: a thread pool (wasm's) has gone back to sleep by then. */
const SETTLE_MS = 300;

/** Below this relative difference, a paired ratio and the ratio of medians always agree. */
export const MIN_RATIO_NOISE = 0.05;

/** Relative spread of samples: their median absolute deviation over their median. */
export function relativeSpread(samples: number[]): number {
  const m = median(samples);
  return m > 0 ? median(samples.map((s) => Math.abs(s - m))) / m : 0;
}

/** A cell's ratio to PyTorch two ways, and whether they agree within the run's noise. */
export interface RatioCheck {
  /** Median of the per-repeat ratios (each tfjs repeat ÷ the PyTorch sample before it). */
  paired: number;
  /** Median tfjs time ÷ median PyTorch time. */
  ofMedians: number;
  /** The run's noise: the relative spreads of both sides' samples added (at least {@link MIN_RATIO_NOISE}). */
  noise: number;
  /** |paired ÷ ofMedians − 1| ≤ noise: only then is a verdict given. */
  agree: boolean;
}

/**
 * {@link RatioCheck} of a cell timed against PyTorch; undefined without paired samples. When
 * the two ratios disagree beyond the noise, pairing went wrong (one side's threads stole the
 * other's cores) and no verdict may rest on either.
 */
export function checkRatio(cell: Cell | undefined): RatioCheck | undefined {
  const own = cell?.samples;
  const peer = cell?.torchSamples;
  if (!own?.length || !peer?.length || cell?.ratio === undefined) return undefined;
  const ofMedians = median(own) / median(peer);
  const noise = Math.max(MIN_RATIO_NOISE, relativeSpread(own) + relativeSpread(peer));
  const agree = Math.abs(cell.ratio / ofMedians - 1) <= noise;
  return { paired: cell.ratio, ofMedians, noise, agree };
}

/** A ratio as printed: the paired one, and the ratio of medians beside it when they differ. */
export function ratioText(check: RatioCheck): string {
  const both = `${ratio(check.paired)} paired, ${ratio(check.ofMedians)} of medians`;
  return check.agree
    ? ratio(check.paired)
    : `${both}: disagree beyond ±${(check.noise * 100).toFixed(0)}% noise`;
}

const quiet = () => undefined;

async function runVariant(
  variant: Variant,
  config: BackendBenchConfig,
  torch: TorchSide | undefined,
): Promise<VariantResult | undefined> {
  const result: VariantResult = {
    id: variant.id,
    label: variant.label,
    cells: {} as Record<Task, Cell>,
    notes: [],
  };
  try {
    const choice = await initBackend({ backend: variant.backend, log: quiet });
    if (choice.threads !== undefined) {
      const why = wasmThreading()?.fallbackReason;
      result.threads = choice.threads;
      result.notes.push(
        `${choice.threads} thread(s)${why ? ` (${why})` : ''}; TFJS_WASM_THREADS sets it`,
      );
    }
  } catch (err) {
    const cell = { error: `backend unavailable: ${firstLine(err)}` };
    for (const task of TASKS) result.cells[task] = cell;
    return result;
  }
  const undo = variant.setup?.();
  if (typeof undo === 'string') {
    console.log(`  skipping ${variant.label}: ${undo}`);
    return undefined;
  }
  const before = tf.memory().numTensors;
  const digits = loadBenchDigits(config.trainSize, config.evalSize);
  const { batchSize } = config;
  const subset = variant.subset ? Math.min(config.cpuSubset, config.evalSize) : undefined;
  let train: LabelledSet = digits.train;
  let test: LabelledSet = digits.eval;
  if (subset !== undefined) {
    train = headOf(digits.train, subset);
    test = headOf(digits.eval, subset);
    result.notes.push(
      `times measured once on ${subset} digits after one warm-up and scaled up linearly`,
    );
  }
  const trainScale = subset ? { timed: subset, full: config.trainSize } : undefined;
  const evalScale = subset ? { timed: subset, full: config.evalSize } : undefined;
  const model = smallCnn({ seed: 0 });
  compileForBench(model);
  try {
    const n = test.xs.shape[0];
    const tasks: Record<Task, [() => Promise<unknown>, typeof trainScale]> = {
      trainEpoch: [() => trainEpoch(model, train, batchSize), trainScale],
      evaluate: [() => evaluate(model, test, batchSize), evalScale],
      inputGradient: [() => inputGradientSign(model, test, batchSize), evalScale],
      inputGradientOneBatch: [() => inputGradientSign(model, test, n), evalScale],
    };
    for (const task of TASKS) {
      const [fn, scale] = tasks[task];
      result.cells[task] = await measure(task, fn, config, torch, scale);
    }
    if (variant.id === 'wasm') {
      const batches = (n: number) => Math.ceil(n / batchSize);
      result.convLayers = convLayerTimes(model, batchSize, config.repeats);
      result.convSeconds = convSecondsPerTask(
        result.convLayers,
        batches(config.trainSize),
        batches(config.evalSize),
      );
    }
    const size = variant.subset ? config.matmulSize / 2 : config.matmulSize;
    result.matmulGflops = await matmulGflops(size, variant.subset ? 1 : config.repeats);
    if (size !== config.matmulSize) result.notes.push(`matmul measured at ${size}×${size}`);
  } finally {
    model.optimizer?.dispose();
    model.dispose();
    disposeSets(digits.train, digits.eval);
    if (subset !== undefined) disposeSets(train, test);
    if (typeof undo === 'function') undo();
  }
  const leaked = tf.memory().numTensors - before;
  if (leaked > 0) result.notes.push(`${leaked} tensors left after the run`);
  return result;
}

/** The greeting of `bench/torch/backend_bench.py`. */
interface TorchGreeting {
  torchVersion: string;
  threads: number;
  interopThreads: number;
}

/** Starts the PyTorch worker on the same digits and warms each task up once. */
async function startTorch(config: BackendBenchConfig): Promise<TorchSide> {
  await initBackend({ log: quiet });
  const digits = loadBenchDigits(config.trainSize, config.evalSize);
  const dataFile = await writeDigitsFile(digits);
  disposeSets(digits.train, digits.eval);
  const spec = { dataFile, ...config, threads: os.cpus().length };
  const specFile = path.join(path.dirname(dataFile), 'spec.json');
  fs.writeFileSync(specFile, JSON.stringify(spec));
  const { worker, greeting } = await PythonWorker.start<TorchGreeting>(
    'bench/torch/backend_bench.py',
    [specFile],
  );
  const side = new TorchSide(worker, greeting);
  for (let i = 0; i < config.warmup; i++) {
    for (const task of TASKS) await worker.ask(task);
  }
  return side;
}

/** PyTorch's row: the median of all its timed runs (paired with every tfjs variant). */
async function torchResult(torch: TorchSide): Promise<VariantResult> {
  const cells = {} as Record<Task, Cell>;
  for (const task of TASKS) {
    const samples = torch.samples.get(task) ?? [];
    cells[task] = samples.length ? { seconds: median(samples), samples } : { error: 'not run' };
  }
  const { gflops } = await torch.worker.ask<{ gflops: number }>('matmul');
  const { accuracy } = await torch.worker.ask<{ accuracy: number }>('accuracy');
  const g = torch.greeting;
  return {
    id: 'torch',
    label: `PyTorch ${g.torchVersion}`,
    cells,
    matmulGflops: gflops,
    notes: [
      `torch.set_num_threads(${g.threads}), ${g.interopThreads} inter-op threads; NCHW; ` +
        `accuracy after its timed epochs ${formatNumber(accuracy)}; its time is the median of ` +
        'all its runs (each paired with a tfjs run)',
    ],
  };
}

const TASK_HEADERS: Record<Task, (c: BackendBenchConfig) => string> = {
  trainEpoch: (c) => `train epoch (${c.trainSize})`,
  evaluate: (c) => `evaluate (${c.evalSize})`,
  inputGradient: (c) => `input grad (${c.evalSize / c.batchSize}×${c.batchSize})`,
  inputGradientOneBatch: (c) => `input grad (1×${c.evalSize})`,
};

function cellText(cell: Cell | undefined): string {
  if (!cell) return '–';
  if (cell.seconds === undefined) return cell.error ?? '–';
  const star = cell.extrapolatedFrom ? '*' : '';
  const check = checkRatio(cell);
  const r = check
    ? ` (${ratioText(check)})`
    : cell.ratio !== undefined
      ? ` (${ratio(cell.ratio)})`
      : '';
  return `${seconds(cell.seconds)}${star}${r}`;
}

/** The main table: one row per backend, each cell "time (ratio to PyTorch)". */
export function resultTable(results: VariantResult[], config: BackendBenchConfig): string {
  const header = ['', ...TASKS.map((t) => TASK_HEADERS[t](config)), 'matmul GFLOP/s'];
  const rows = results.map((r) => [
    r.label,
    ...TASKS.map((t) => cellText(r.cells[t])),
    r.matmulGflops,
  ]);
  return markdownTable(header, rows);
}

/** The FLOP arithmetic: what each task costs and the time it would take at the matmul rate. */
export function flopTable(flops: TaskFlops, results: VariantResult[]): string {
  const rows: (string | number | undefined)[][] = [];
  const tasks: [Task, number][] = [
    ['trainEpoch', flops.trainEpoch],
    ['evaluate', flops.evaluate],
    ['inputGradient', flops.inputGradient],
    ['inputGradientOneBatch', flops.inputGradient],
  ];
  const shown = results.filter((r) => r.matmulGflops && r.cells.trainEpoch?.seconds !== undefined);
  for (const [task, taskFlops] of tasks) {
    const row: (string | number | undefined)[] = [task, taskFlops / 1e9];
    for (const r of shown) {
      const bound = taskFlops / ((r.matmulGflops as number) * 1e9);
      const measured = r.cells[task]?.seconds;
      row.push(
        `${seconds(bound)} → ${measured !== undefined ? `${ratio(measured / bound)} the bound` : '–'}`,
      );
    }
    rows.push(row);
  }
  return markdownTable(
    [
      'task',
      'GFLOP',
      ...shown.map((r) => `${r.label}: bound at ${formatNumber(r.matmulGflops as number)} GFLOP/s`),
    ],
    rows,
  );
}

/** Issue 10's targets for `wasm`: its time at most this many times PyTorch's, per task. */
export const WASM_TARGETS: Record<Task, number> = {
  trainEpoch: 3,
  evaluate: 1,
  inputGradient: 1,
  inputGradientOneBatch: 1,
};

/** One task's arithmetic for `wasm`: its bound, issue 10's target, and where we stand. */
export interface TargetRow {
  task: Task;
  gflop: number;
  /** The backend's own measured matmul rate the bound is computed at. */
  matmulGflops: number;
  /** FLOPs ÷ the matmul rate, in seconds: no faster is possible at that rate. */
  boundSeconds: number;
  /** The target's factor of PyTorch's time (3 for training, 1 otherwise). */
  factor: number;
  /** factor × PyTorch's time in this run, in seconds. */
  targetSeconds?: number;
  /** True when the target is faster than the bound: then the bound is the goal instead. */
  beyondBound?: boolean;
  /** What must be reached: the target, or the bound when the target is beyond it. */
  goalSeconds?: number;
  measuredSeconds?: number;
  /** Our time ÷ the bound. */
  overBound?: number;
  /** Our time ÷ the target. */
  overTarget?: number;
  /** Our time ÷ the goal (≤ 1: reached). */
  overGoal?: number;
  /** The paired ratio and the ratio of medians; no verdict when they disagree. */
  ratios?: RatioCheck;
}

/**
 * The arithmetic of issue 10's `wasm` targets, per task: the bound at wasm's own measured matmul
 * rate, the target (a multiple of PyTorch's time in the same run), whether the target is beyond
 * the bound (then the bound is the goal), and our time over each. Empty without a wasm result.
 */
export function wasmTargetRows(flops: TaskFlops, results: VariantResult[]): TargetRow[] {
  const wasm = results.find((r) => r.id === 'wasm');
  const torch = results.find((r) => r.id === 'torch');
  const rate = wasm?.matmulGflops;
  if (wasm === undefined || rate === undefined || rate <= 0) return [];
  const taskGflop: Record<Task, number> = {
    trainEpoch: flops.trainEpoch,
    evaluate: flops.evaluate,
    inputGradient: flops.inputGradient,
    inputGradientOneBatch: flops.inputGradient,
  };
  return TASKS.map((task) => {
    const gflop = taskGflop[task] / 1e9;
    const boundSeconds = gflop / rate;
    const factor = WASM_TARGETS[task];
    const row: TargetRow = { task, gflop, matmulGflops: rate, boundSeconds, factor };
    const torchSeconds = torch?.cells[task]?.seconds;
    const measured = wasm.cells[task]?.seconds;
    if (torchSeconds !== undefined) {
      row.targetSeconds = factor * torchSeconds;
      row.beyondBound = row.targetSeconds < boundSeconds;
      row.goalSeconds = Math.max(row.targetSeconds, boundSeconds);
    }
    if (measured !== undefined) {
      row.measuredSeconds = measured;
      row.overBound = measured / boundSeconds;
      // The paired ratio (median of per-repeat ratios) is steadier than a ratio of medians,
      // when the two agree (see checkRatio).
      const paired = wasm.cells[task]?.ratio;
      row.ratios = checkRatio(wasm.cells[task]);
      if (row.targetSeconds !== undefined) {
        row.overTarget = paired !== undefined ? paired / factor : measured / row.targetSeconds;
        row.overGoal = row.beyondBound ? row.overBound : row.overTarget;
      }
    }
    return row;
  });
}

/** Whether a task reached its goal; no verdict on a busy machine or when the ratios disagree. */
export function targetVerdict(row: TargetRow, busy: boolean): string | undefined {
  if (row.overGoal === undefined) return undefined;
  if (busy) return `no verdict (busy), ${ratio(row.overGoal)}`;
  // Beyond the bound the goal does not rest on PyTorch's time, so the pairing does not matter.
  if (row.ratios && !row.ratios.agree && !row.beyondBound) {
    return `no verdict (paired and median ratios disagree beyond ±${(row.ratios.noise * 100).toFixed(0)}%)`;
  }
  return row.overGoal <= 1 ? 'yes' : `no (${ratio(row.overGoal)} the goal)`;
}

/**
 * {@link wasmTargetRows} as a table, one row per task. On a `busy` machine no verdict is given
 * (PyTorch's threads suffer most from a taken core, which flatters every ratio to it).
 */
export function wasmTargetTable(rows: TargetRow[], busy = false): string {
  const s = (v: number | undefined) => (v === undefined ? undefined : seconds(v));
  const r = (v: number | undefined) => (v === undefined ? undefined : ratio(v));
  return markdownTable(
    [
      'task',
      'GFLOP',
      'wasm bound',
      'target',
      'target beyond bound?',
      'goal',
      'wasm',
      'wasm ÷ bound',
      'wasm ÷ target',
      'wasm ÷ PyTorch: paired, of medians',
      'goal reached?',
    ],
    rows.map((row) => [
      row.task,
      row.gflop,
      s(row.boundSeconds),
      row.targetSeconds === undefined
        ? `${row.factor}× PyTorch`
        : `${row.factor}× PyTorch = ${seconds(row.targetSeconds)}`,
      row.beyondBound === undefined ? undefined : row.beyondBound ? 'yes: goal = bound' : 'no',
      s(row.goalSeconds),
      s(row.measuredSeconds),
      r(row.overBound),
      r(row.overTarget),
      row.ratios ? `${ratio(row.ratios.paired)}, ${ratio(row.ratios.ofMedians)}` : undefined,
      targetVerdict(row, busy),
    ]),
  );
}

function parseConfig(args: string[]): BackendBenchConfig {
  const parsed = parseArgs(args, [
    'repeats',
    'warmup',
    'train',
    'eval',
    'cpu-subset',
    'no-torch',
    'only',
  ]);
  const only = parsed.get('only');
  const variants = only ? only.split(',') : DEFAULT_CONFIG.variants;
  const unknown = variants.filter((v) => !VARIANTS.some((k) => k.id === v));
  if (unknown.length) {
    throw new Error(
      `--only: unknown ${unknown.join(', ')}; known: ${VARIANTS.map((v) => v.id).join(', ')}`,
    );
  }
  return {
    ...DEFAULT_CONFIG,
    repeats: intArg(parsed, 'repeats', DEFAULT_CONFIG.repeats),
    warmup: intArg(parsed, 'warmup', DEFAULT_CONFIG.warmup),
    trainSize: intArg(parsed, 'train', DEFAULT_CONFIG.trainSize),
    evalSize: intArg(parsed, 'eval', DEFAULT_CONFIG.evalSize),
    cpuSubset: intArg(parsed, 'cpu-subset', DEFAULT_CONFIG.cpuSubset),
    withTorch: !parsed.has('no-torch'),
    variants,
  };
}

/** Runs the bench and returns every result (also written to `bench-results/backend.json`). */
export async function runBackendBench(config: BackendBenchConfig = DEFAULT_CONFIG) {
  const loadBefore = os.loadavg();
  const home = await initBackend({ log: quiet });
  const results: VariantResult[] = [];
  let torch: TorchSide | undefined;
  if (config.withTorch) {
    console.log('  PyTorch …');
    try {
      torch = await startTorch(config);
    } catch (err) {
      console.log(`  PyTorch unavailable, no ratios: ${firstLine(err)}`);
    }
  }
  try {
    for (const variant of VARIANTS.filter((v) => config.variants.includes(v.id))) {
      console.log(`  ${variant.label} …`);
      const r = await runVariant(variant, config, torch);
      if (r) results.push(r);
    }
    if (torch) results.unshift(await torchResult(torch));
  } finally {
    await torch?.worker.stop();
  }
  // Leave the process on the backend it started with, for the benches that follow.
  await initBackend({ backend: home.id, log: quiet });
  const model = smallCnn();
  const macs = countMacs(model);
  const flops = taskFlops(model, config.trainSize, config.evalSize);
  model.dispose();
  const loadAfter = os.loadavg();
  const wasmTargets = wasmTargetRows(flops, results);
  return {
    config,
    results,
    macs,
    flops,
    wasmTargets,
    loadBefore,
    loadAfter,
    cores: os.cpus().length,
  };
}

function report(out: Awaited<ReturnType<typeof runBackendBench>>): void {
  const { config, results, macs, flops } = out;
  const cpus = os.cpus();
  console.log(
    `\nsmall CNN, ${config.trainSize} train / ${config.evalSize} eval real MNIST digits, batch ` +
      `${config.batchSize}; median of ${config.repeats} after ${config.warmup} warm-up; ` +
      `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}; ` +
      `load average ${out.loadBefore[0].toFixed(2)} → ${out.loadAfter[0].toFixed(2)} (the ` +
      "bench's own threads, two at a time, raise the second)\n",
  );
  // Other work is judged by the load before the run: during it, PyTorch's and wasm's two threads
  // alone bring a 2-core machine's load towards 2.
  const busy = out.loadBefore[0] > cpus.length / 2;
  if (busy) {
    console.log(
      `WARNING: the machine was busy (load average above ${cpus.length / 2} on ${cpus.length} ` +
        'cores): times and ratios are unreliable. PyTorch suffers most (its OpenMP threads ' +
        'wait on each other when a core is taken). Rerun on an idle machine.\n',
    );
  }
  console.log(resultTable(results, config));
  console.log('\n* extrapolated from a subset (see notes). Ratios are to PyTorch in this run.');
  for (const r of results) for (const note of r.notes) console.log(`  ${r.label}: ${note}`);
  const perLayer = macs.map((m) => `${m.layer} ${formatNumber((2 * m.macs) / 1e6)}`).join(' + ');
  console.log(
    `\nFLOP arithmetic: forward per example = ${perLayer} = ` +
      `${formatNumber(flops.forwardPerExample / 1e6)} MFLOP (2 FLOPs per multiply-accumulate; ` +
      'pooling, activations and biases not counted). Training = 3× forward (backward ≈ 2× ' +
      'forward), input gradient = 2× forward (no weight gradients), evaluation = 1× forward. ' +
      'Bound = FLOPs ÷ the backend’s own measured matmul rate.\n',
  );
  console.log(flopTable(flops, results));
  if (out.wasmTargets.length > 0) {
    const rate = formatNumber(out.wasmTargets[0].matmulGflops);
    const n = results.find((r) => r.id === 'wasm')?.threads ?? 1;
    const threads = `${n} thread${n === 1 ? '' : 's'}`;
    console.log(
      `\nIssue 10's wasm targets: training ≤ 3× PyTorch, evaluation and input gradients ≤ 1×. ` +
        `Bound = GFLOP ÷ wasm's own matmul rate (${rate} GFLOP/s, SIMD on ${threads}). Where ` +
        'the target is faster than the bound, the bound is the goal instead.' +
        (busy ? ' (machine busy: ratios unreliable)' : '') +
        '\n',
    );
    console.log(wasmTargetTable(out.wasmTargets, busy));
    const wasm = results.find((r) => r.id === 'wasm');
    const torch = results.find((r) => r.id === 'torch');
    if (wasm?.convSeconds && wasm.convLayers) {
      console.log(convAloneReport(wasm, torch));
    }
  }
  const torch = results.find((r) => r.id === 'torch');
  if (torch) {
    console.log(
      `\nTarget tfjs ≤ 1.2× PyTorch${busy ? ' (machine busy: no verdict, ratios shown)' : ''}:`,
    );
    for (const r of results.filter((x) => x.id !== 'torch')) {
      const verdicts = TASKS.map((t) => {
        const q = r.cells[t]?.ratio;
        if (q === undefined) return `${t} –`;
        const check = checkRatio(r.cells[t]);
        if (check && !check.agree) return `${t} ${ratioText(check)}: no verdict`;
        return `${t} ${ratio(q)}${busy ? '' : q <= 1.2 ? ' met' : ' not met'}`;
      });
      console.log(`  ${r.label}: ${verdicts.join('; ')}`);
    }
  }
}

/**
 * How much of each task wasm spends in the model's convolution kernels alone, beside PyTorch's
 * whole task: where the convolutions alone take longer than PyTorch's whole task, the target
 * is out of reach of these kernels (XNNPACK's, at wasm SIMD's rate without fused multiply-add,
 * for every layer with more than 4 input channels).
 */
export function convAloneReport(wasm: VariantResult, torch: VariantResult | undefined): string {
  const layers = wasm.convLayers ?? [];
  const per = layers
    .map(
      (l) =>
        `${l.layer}: forward ${seconds(l.forward)}, input gradient ${seconds(l.inputGradient)}, ` +
        `filter gradient ${seconds(l.filterGradient)}`,
    )
    .join('; ');
  const rows = (['trainEpoch', 'evaluate', 'inputGradient'] as const).map((task) => {
    const conv = wasm.convSeconds?.[task] as number;
    const whole = wasm.cells[task]?.seconds;
    const theirs = torch?.cells[task]?.seconds;
    return [
      task,
      seconds(conv),
      whole === undefined ? undefined : `${Math.round((100 * conv) / whole)}%`,
      theirs === undefined ? undefined : seconds(theirs),
      theirs === undefined ? undefined : ratio(conv / theirs),
      theirs === undefined ? undefined : ratio((WASM_TARGETS[task] * theirs) / conv),
    ];
  });
  return (
    `\nConvolutions alone on wasm (each Conv2D layer's kernels timed one by one at the ` +
    `batch size, times the task's batches; per batch: ${per}). Where the target is at or ` +
    'below the convolutions alone (target ÷ convolutions ≤ 1), no work on the other ops can ' +
    "reach it with these convolution kernels (XNNPACK's for conv2, at wasm SIMD's rate " +
    'without fused multiply-add):\n\n' +
    markdownTable(
      [
        'task',
        'convolutions alone',
        'share of wasm’s task',
        'PyTorch, whole task',
        'convolutions ÷ PyTorch',
        'target ÷ convolutions',
      ],
      rows,
    )
  );
}

/** `npm run bench backend [--repeats=N] [--warmup=N] [--train=N] [--eval=N] [--cpu-subset=N] [--no-torch] [--only=a,b]` */
export const bench: Bench = {
  name: 'backend',
  description: 'small CNN: train epoch, evaluation, input gradient on each tfjs backend vs PyTorch',
  async run(args: string[]) {
    const config = parseConfig(args);
    const out = await runBackendBench(config);
    report(out);
    const file = writeResult('backend', out);
    console.log(`\nwritten: ${file}`);
  },
};
