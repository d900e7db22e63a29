import * as tf from '@tensorflow/tfjs';
import { fgsmBatch, logitsFunction, pgd, pgdBatch, toClassIds, toOneHot } from './attacks';
import { filterStep, intervalHolds, valueRange, type RemovedInterval } from './filters';
import {
  checkDataArgument,
  checkInputsFinite,
  checkLabels,
  checkModel,
  checkWeightsFinite,
} from './input-checks';
import { copies } from './blocks';
import { canVary, GraphRunner, type GraphSplit, type WeightVariants } from './graph';
import {
  defaultVariantMemoryMiB,
  reportOptions,
  resolveAnalyzeOptions,
  type AnalyzeOptions,
  type ResolvedOptions,
} from './options';
import { selectParameters, type SelectedParameter } from './parameters';
import { scoreSweep } from './scores';
import type { AnalysisReport, FilterId, FilterResult, ParameterResult, StepResult } from './types';
import { checkModelTfjs } from '../util/tfjs-copies';
import { GLOBAL_PARAMETER, workFilters } from './work';

/** Evaluation data: inputs and labels (one-hot `[n, classes]` or class ids `[n]`). */
export interface AnalysisData {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

interface Batch {
  xs: tf.Tensor;
  oneHot: tf.Tensor;
  ids: tf.Tensor1D;
  /** Adversarial examples against the unfiltered model. */
  adversarial: tf.Tensor;
}

/** A weight tensor under analysis: its original value, kept to restore it exactly. */
interface Target {
  param: SelectedParameter;
  original: tf.Tensor;
  values: Float32Array;
  /** `values` in ascending order: where each filter step's removed values lie. */
  sorted: Float32Array;
  range: { min: number; max: number };
}

/** One (filter, step) cell of a sweep and the removed set it produces. */
interface Cell {
  filter: FilterId;
  step: number;
  alpha: number;
  progress: number;
  removed: number;
  /** Identifies the removed set: cells with equal keys give the same model. */
  key: string;
}

interface Accuracy {
  clean: number;
  adversarial: number;
}

const REFERENCE = 'reference';

function rawVariable(v: tf.LayerVariable): tf.Variable {
  // LayerVariable.write() applies the layer's weight constraint; restoring must not.
  return (v as unknown as { val: tf.Variable }).val;
}

function assign(v: tf.LayerVariable, value: Float32Array | tf.Tensor): void {
  if (value instanceof tf.Tensor) {
    rawVariable(v).assign(value);
    return;
  }
  const t = tf.tensor(value, v.shape as number[], 'float32');
  rawVariable(v).assign(t);
  t.dispose();
}

/**
 * Where the values an interval removes lie in `sorted` (the tensor's values in ascending order):
 * positions [start, end). Equal values are all in or all out, so the removed index set is
 * exactly the one with this range: the range is its key.
 */
function removedRange(sorted: Float32Array, { lo, hi, hiOpen }: RemovedInterval): [number, number] {
  const firstWhere = (pred: (v: number) => boolean) => {
    let a = 0;
    let b = sorted.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (pred(sorted[m])) b = m;
      else a = m + 1;
    }
    return a;
  };
  const start = firstWhere((v) => v >= lo);
  const end = firstWhere(hiOpen ? (v) => v >= hi : (v) => v > hi);
  return [start, Math.max(start, end)];
}

function removedKey(
  sorted: Float32Array,
  interval: RemovedInterval,
): { removed: number; key: string } {
  const [start, end] = removedRange(sorted, interval);
  return { removed: end - start, key: end === start ? REFERENCE : `${start}:${end}` };
}

function filtered(values: Float32Array, interval: RemovedInterval): Float32Array {
  const out = new Float32Array(values);
  for (let i = 0; i < out.length; i++) if (intervalHolds(interval, out[i])) out[i] = 0;
  return out;
}

function checkData(model: tf.LayersModel, data: AnalysisData): { n: number; classes: number } {
  checkModel(model);
  checkDataArgument(data);
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error(
      `analyze: the model must have one input and one output; got ${model.inputs.length} and ${model.outputs.length}`,
    );
  }
  const expected = model.inputs[0].shape;
  const got = data.xs.shape;
  const fits =
    got.length === expected.length &&
    expected.every((d, i) => i === 0 || d === null || d === got[i]);
  if (!fits) {
    throw new Error(
      `analyze: data.xs has shape [${got.join(', ')}] but the model expects [${expected
        .map((d) => (d === null ? 'n' : d))
        .join(', ')}]`,
    );
  }
  const n = got[0];
  if (n < 1) throw new Error('analyze: data.xs holds no examples');
  if (data.ys.shape[0] !== n) {
    throw new Error(`analyze: data.xs has ${n} examples but data.ys has ${data.ys.shape[0]}`);
  }
  const outShape = model.outputs[0].shape;
  const classes = outShape[outShape.length - 1];
  if (typeof classes !== 'number')
    throw new Error('analyze: the model output has no fixed class count');
  const ysOk =
    data.ys.rank === 1 ||
    (data.ys.rank === 2 && (data.ys.shape[1] === classes || data.ys.shape[1] === 1));
  if (!ysOk) {
    throw new Error(
      `analyze: data.ys must be class ids [n] or one-hot [n, ${classes}]; got [${data.ys.shape.join(', ')}]`,
    );
  }
  checkLabels(data.ys, classes);
  checkInputsFinite(data.xs);
  checkWeightsFinite(model);
  return { n, classes };
}

function countCorrect(predictions: tf.Tensor, ids: tf.Tensor1D): number {
  return tf.tidy(() => {
    const classes = predictions.rank === 1 ? predictions : predictions.argMax(-1);
    return classes.toInt().equal(ids).sum().dataSync()[0];
  });
}

/**
 * Checks an analysis setup without running it: options, data against the model, and the
 * parameter selection. Throws the same errors {@link analyze} would, before any compute.
 */
export function checkAnalysisSetup(
  model: tf.LayersModel,
  data: AnalysisData,
  options: AnalyzeOptions,
): { examples: number; parameters: string[] } {
  const opts = resolveAnalyzeOptions(options);
  const { n } = checkData(model, data);
  return { examples: n, parameters: selectParameters(model, opts.parameters).map((p) => p.name) };
}

/**
 * The analysis of docs/method.md §1–§5: for each selected parameter and filter, a sweep of K
 * filtering steps, each evaluated on the clean and the adversarial set; filtering scores and
 * labels. The model's weights after the analysis are bit-identical to those before it, and no
 * tensor is left behind. Options are validated first: a bad option, bad data or non-finite
 * weights raise an error before the model is touched.
 */
export async function analyze(
  model: tf.LayersModel,
  data: AnalysisData,
  options: AnalyzeOptions,
): Promise<AnalysisReport> {
  const started = Date.now();
  checkModelTfjs('analyze', model);
  const opts = resolveAnalyzeOptions(options);
  const { n, classes } = checkData(model, data);
  const params = selectParameters(model, opts.parameters);
  const names = opts.mode === 'global' ? [GLOBAL_PARAMETER] : params.map((p) => p.name);
  const wanted = workFilters(opts.work, names, opts.filters);
  // Read and check every weight before touching any (non-finite values are an error).
  const snapshots = params.map((param) => {
    const values = param.variable.read().dataSync() as Float32Array;
    return { param, values, range: valueRange(values, `weight '${param.name}'`) };
  });
  // The clones share the variables' buffers: restoring them is exact, bit for bit.
  const targets: Target[] = snapshots.map((s) => ({
    ...s,
    sorted: Float32Array.from(s.values).sort(),
    original: s.param.variable.read().clone(),
  }));

  const session = new AnalysisSession(model, opts, classes, wanted);
  try {
    session.prepare(data, n);
    const results =
      opts.mode === 'global'
        ? [await session.sweepGlobal(targets)]
        : await session.sweepEach(targets);
    return {
      reference: session.reference,
      parameters: results,
      options: reportOptions(
        opts,
        params.map((p) => p.name),
      ),
      backend: tf.getBackend(),
      seconds: (Date.now() - started) / 1000,
      examples: n,
    };
  } finally {
    for (const t of targets) {
      assign(t.param.variable, t.original);
      t.original.dispose();
    }
    session.dispose();
  }
}

/** The state of one analysis run: data batches, the graph runner, the reference accuracies. */
class AnalysisSession {
  reference: Accuracy = { clean: 0, adversarial: 0 };
  private batches: Batch[] = [];
  private readonly runner: GraphRunner;
  private readonly logits: (x: tf.Tensor) => tf.Tensor;
  private examples = 0;
  private done = 0;
  private total = 0;
  /** `variantMemoryMiB` in bytes, its default resolved once for the session. */
  private readonly variantBudget: number;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly opts: ResolvedOptions,
    private readonly classes: number,
    /** The filters to sweep for a parameter (option `work`). */
    private readonly wanted: (parameter: string) => FilterId[],
  ) {
    this.runner = new GraphRunner(model);
    this.logits = logitsFunction(model, opts.output);
    this.variantBudget =
      (opts.variantMemoryMiB ??
        defaultVariantMemoryMiB(tf.getBackend(), undefined, opts.regenerate)) *
      2 ** 20;
  }

  /** Splits the data into batches, attacks the unfiltered model, measures the reference. */
  prepare(data: AnalysisData, n: number): void {
    this.examples = n;
    const oneHot = toOneHot(data.ys, this.classes);
    const ids = toClassIds(data.ys);
    for (let start = 0; start < n; start += this.opts.batchSize) {
      const size = Math.min(this.opts.batchSize, n - start);
      const xs = data.xs.slice(start, size);
      const batch: Batch = {
        xs,
        oneHot: oneHot.slice(start, size),
        ids: ids.slice(start, size),
        adversarial: xs, // replaced below
      };
      this.batches.push(batch);
    }
    tf.dispose([oneHot, ids]);
    let clean = 0;
    let adversarial = 0;
    for (const b of this.batches) {
      const attacked = this.attack(b);
      b.adversarial = attacked.adversarial;
      clean += this.cleanCorrect(b, attacked.cleanPredictions);
      adversarial += this.predictCorrect(b.adversarial, b.ids);
    }
    this.reference = { clean: clean / n, adversarial: adversarial / n };
  }

  dispose(): void {
    for (const b of this.batches) {
      tf.dispose([b.xs, b.oneHot, b.ids]);
      if (b.adversarial !== b.xs) b.adversarial.dispose();
    }
    this.batches = [];
  }

  /** Layer-wise analysis: each parameter on its own, the others untouched. */
  async sweepEach(targets: Target[]): Promise<ParameterResult[]> {
    const wanted = targets.map((t) => this.wanted(t.param.name));
    this.total = wanted.reduce((s, f) => s + f.length, 0) * this.opts.steps;
    const results: ParameterResult[] = [];
    for (const [index, target] of targets.entries()) {
      const filters = wanted[index];
      if (filters.length === 0) continue;
      const cells = this.cells([target]);
      const work = cells.filter((c) => filters.includes(c.filter));
      const accuracy = await this.evaluateCells(work, [target]);
      assign(target.param.variable, target.original);
      results.push(
        this.result(
          target.param.name,
          target.param.layer.name,
          target.param.variable.shape as number[],
          target.values.length,
          index / targets.length,
          cells,
          accuracy,
          filters,
        ),
      );
    }
    return results;
  }

  /** Global analysis: every selected tensor filtered at once, each with its own range. */
  async sweepGlobal(targets: Target[]): Promise<ParameterResult> {
    const filters = this.wanted(GLOBAL_PARAMETER);
    this.total = filters.length * this.opts.steps;
    const cells = this.cells(targets);
    const work = cells.filter((c) => filters.includes(c.filter));
    const accuracy = await this.evaluateCells(work, targets);
    for (const t of targets) assign(t.param.variable, t.original);
    const size = targets.reduce((s, t) => s + t.values.length, 0);
    return this.result(GLOBAL_PARAMETER, '(all)', [size], size, 0, cells, accuracy, filters);
  }

  private result(
    name: string,
    layer: string,
    shape: number[],
    size: number,
    depth: number,
    cells: Cell[],
    accuracy: Map<string, Accuracy>,
    swept: FilterId[],
  ): ParameterResult {
    const filters: ParameterResult['filters'] = {};
    for (const filter of swept) {
      const steps: StepResult[] = cells
        .filter((c) => c.filter === filter)
        .map((c) => {
          const acc = accuracy.get(c.key) as Accuracy;
          return {
            progress: c.progress,
            alpha: c.alpha,
            removed: c.removed,
            clean: acc.clean,
            adversarial: acc.adversarial,
          };
        });
      const scored = scoreSweep(steps, size, this.opts.baseline, this.opts.tolerance);
      const result: FilterResult = { steps, ...scored };
      filters[filter] = result;
    }
    const evaluated = new Set(cells.map((c) => c.key).filter((k) => k !== REFERENCE)).size;
    return { name, layer, shape: [...shape], size, depth, filters, evaluated };
  }

  /** Every (filter, step) cell with its removed set's identity (summed over `targets`). */
  private cells(targets: Target[]): Cell[] {
    const cells: Cell[] = [];
    for (const filter of this.opts.filters) {
      for (let step = 0; step < this.opts.steps; step++) {
        let removed = 0;
        const keys: string[] = [];
        let alpha = 0;
        let progress = 0;
        for (const t of targets) {
          const rule = filterStep(filter, step, this.opts.steps, t.range.min, t.range.max);
          const k = removedKey(t.sorted, rule.interval);
          removed += k.removed;
          keys.push(k.key);
          alpha = rule.alpha;
          progress = rule.progress;
        }
        const key = removed === 0 ? REFERENCE : keys.join('|');
        // Naive strategy: every cell is its own evaluation.
        const cellKey = this.opts.strategy === 'naive' ? `${filter}:${step}` : key;
        cells.push({ filter, step, alpha, progress, removed, key: cellKey });
      }
    }
    return cells;
  }

  private applyCell(cell: Cell, targets: Target[]): void {
    for (const t of targets) assign(t.param.variable, this.filteredValues(cell, t));
  }

  private filteredValues(cell: Cell, t: Target): Float32Array {
    const rule = filterStep(cell.filter, cell.step, this.opts.steps, t.range.min, t.range.max);
    return filtered(t.values, rule.interval);
  }

  /** Evaluates each distinct removed set once (the fast strategy), or every cell (naive). */
  private async evaluateCells(cells: Cell[], targets: Target[]): Promise<Map<string, Accuracy>> {
    const accuracy = new Map<string, Accuracy>();
    const parameter = targets.length === 1 ? targets[0].param.name : '(global)';
    const groups = new Map<string, Cell[]>();
    for (const c of cells) groups.set(c.key, [...(groups.get(c.key) ?? []), c]);
    const fast = this.opts.strategy === 'fast';
    if (fast && groups.has(REFERENCE)) {
      accuracy.set(REFERENCE, this.reference);
      this.advance(groups.get(REFERENCE)?.length ?? 0, parameter);
    }
    const pending = [...groups.values()].filter((g) => !accuracy.has(g[0].key));
    const batched = fast && targets.every((t) => canVary(t.param.layer, t.param.variable));
    const evaluate = batched ? this.evaluateBatched : this.evaluateOneByOne;
    await evaluate.call(this, pending, targets, (group, acc) => {
      accuracy.set(group[0].key, acc);
      this.advance(group.length, parameter);
    });
    return accuracy;
  }

  /** One filtered model at a time, its weights assigned to the model (naive, or unbatchable). */
  private async evaluateOneByOne(
    pending: Cell[][],
    targets: Target[],
    done: (group: Cell[], accuracy: Accuracy) => void,
  ): Promise<void> {
    for (const group of pending) {
      this.applyCell(group[0], targets);
      done(group, this.evaluateModel());
      // Let timers and signal handlers run between steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * The batched sweep: chunks of filtered models evaluated together, each chunk's variants of
   * the filtered tensors passed to the graph runner (the model's weights stay untouched). With
   * a fixed adversarial set and one tensor, from the activations entering its layer, cached.
   */
  private async evaluateBatched(
    pending: Cell[][],
    targets: Target[],
    done: (group: Cell[], accuracy: Accuracy) => void,
  ): Promise<void> {
    const cache =
      !this.opts.regenerate && targets.length === 1
        ? this.cacheFrontiers(targets[0].param.layer)
        : undefined;
    try {
      const perPass = this.variantsPerPass(cache?.split);
      for (let i = 0; i < pending.length; i += perPass) {
        const chunk = pending.slice(i, i + perPass);
        const variants: WeightVariants = { values: new Map(), count: chunk.length };
        for (const t of targets) {
          const shape = t.param.variable.shape as number[];
          const values = chunk.map((g) => tf.tensor(this.filteredValues(g[0], t), shape));
          variants.values.set(t.param.variable, values);
        }
        try {
          const accuracies = this.evaluateVariants(variants, cache);
          chunk.forEach((group, b) => done(group, accuracies[b]));
        } finally {
          for (const values of variants.values.values()) tf.dispose(values);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      cache?.frontiers.forEach((f) => tf.dispose(f));
    }
  }

  /**
   * Filtered models per batched pass, from the memory budget: a pass holds the activations of
   * `variants × batchSize` examples through the layers it runs (twice that for the clean and
   * adversarial sets stacked, three times for an input gradient's forward, backward and sign).
   */
  private variantsPerPass(split?: GraphSplit): number {
    const examples = Math.min(this.opts.batchSize, this.examples);
    const perExample = split
      ? 2 * this.runner.exampleBytes(split.suffix)
      : (this.opts.regenerate ? 3 : 1) * this.runner.exampleBytes();
    return Math.max(1, Math.floor(this.variantBudget / (perExample * examples)));
  }

  /** Accuracies of `variants.count` filtered models, in order. */
  private evaluateVariants(
    variants: WeightVariants,
    cache?: { split: GraphSplit; frontiers: tf.Tensor[][] },
  ): Accuracy[] {
    const count = variants.count;
    const clean = new Array<number>(count).fill(0);
    const adversarial = new Array<number>(count).fill(0);
    this.batches.forEach((b, i) => {
      const hits = cache
        ? this.variantHitsFromCache(b, cache.split, cache.frontiers[i], variants)
        : this.variantHits(b, variants);
      for (let v = 0; v < count; v++) {
        clean[v] += hits.clean[v];
        adversarial[v] += hits.adversarial[v];
      }
    });
    return clean.map((c, v) => ({
      clean: c / this.examples,
      adversarial: adversarial[v] / this.examples,
    }));
  }

  /** Correct predictions per variant from the cached frontier (clean and adversarial stacked). */
  private variantHitsFromCache(
    b: Batch,
    split: GraphSplit,
    frontier: tf.Tensor[],
    variants: WeightVariants,
  ): { clean: number[]; adversarial: number[] } {
    const size = b.xs.shape[0];
    const counts = tf.tidy(() => {
      const out = this.runner.suffixOutput(split, frontier, variants);
      const ids = copies(tf.concat([b.ids, b.ids]), variants.count);
      const hits = out.argMax(-1).toInt().equal(ids.toInt()).toInt();
      return hits.reshape([variants.count, 2, size]).sum(2);
    });
    const data = counts.dataSync();
    counts.dispose();
    const pick = (k: number) => Array.from({ length: variants.count }, (_, v) => data[2 * v + k]);
    return { clean: pick(0), adversarial: pick(1) };
  }

  /**
   * Correct predictions per variant from whole-graph passes over `variants.count` copies of the
   * batch; with `regenerate`, the variants' attack is one input gradient over all copies.
   */
  private variantHits(
    b: Batch,
    variants: WeightVariants,
  ): { clean: number[]; adversarial: number[] } {
    const count = variants.count;
    const xs = copies(b.xs, count);
    const ids = copies(b.ids, count) as tf.Tensor1D;
    const perVariant = (predictions: tf.Tensor): number[] => {
      const counts = tf.tidy(() =>
        predictions.toInt().equal(ids).toInt().reshape([count, -1]).sum(1),
      );
      const out = Array.from(counts.dataSync());
      tf.dispose([counts, predictions]);
      return out;
    };
    const predict = (x: tf.Tensor) => tf.tidy(() => this.runner.predict(x, variants).argMax(-1));
    try {
      if (!this.opts.regenerate) {
        const adversarial = copies(b.adversarial, count);
        const hits = {
          clean: perVariant(predict(xs)),
          adversarial: perVariant(predict(adversarial)),
        };
        adversarial.dispose();
        return hits;
      }
      const oneHot = copies(b.oneHot, count);
      const attacked = this.attackVariants(xs, oneHot, variants);
      oneHot.dispose();
      const clean = perVariant(attacked.cleanPredictions ?? predict(xs));
      const adversarial = perVariant(predict(attacked.adversarial));
      attacked.adversarial.dispose();
      return { clean, adversarial };
    } finally {
      tf.dispose([xs, ids]);
    }
  }

  /** {@link attack} for `variants.count` filtered models at once, on their copies of a batch. */
  private attackVariants(
    xs: tf.Tensor,
    oneHot: tf.Tensor,
    variants: WeightVariants,
  ): { adversarial: tf.Tensor; cleanPredictions?: tf.Tensor1D } {
    // FGSM's one gradient is taken at the clean batch, the same in every copy (PGD moves away).
    const copies = this.opts.attack === 'fgsm';
    const logits = (x: tf.Tensor) =>
      this.opts.output === 'logits'
        ? this.runner.raw(x, variants, copies)
        : this.runner.logits(x, variants, copies);
    if (this.opts.attack === 'pgd') {
      const settings = this.opts.pgd as { steps: number; stepSize: number };
      return {
        adversarial: pgdBatch(logits, xs, oneHot, this.opts.epsilon, {
          ...settings,
          clip: this.opts.clip,
        }),
      };
    }
    return fgsmBatch(logits, xs, oneHot, this.opts.epsilon, this.opts.clip);
  }

  private advance(cells: number, parameter: string): void {
    this.done += cells;
    this.opts.onProgress?.({ done: this.done, total: this.total, parameter });
  }

  /** Accuracy of the current (filtered) model, attacking it afresh when `regenerate`. */
  private evaluateModel(): Accuracy {
    let clean = 0;
    let adversarial = 0;
    for (const b of this.batches) {
      if (this.opts.regenerate) {
        const attacked = this.attack(b);
        clean += this.cleanCorrect(b, attacked.cleanPredictions);
        adversarial += this.predictCorrect(attacked.adversarial, b.ids);
        attacked.adversarial.dispose();
      } else {
        clean += this.predictCorrect(b.xs, b.ids);
        adversarial += this.predictCorrect(b.adversarial, b.ids);
      }
    }
    return { clean: clean / this.examples, adversarial: adversarial / this.examples };
  }

  /**
   * With a fixed adversarial set, the activations entering the ablated layer do not change
   * between steps: compute them once per batch (clean and adversarial stacked) and re-run only
   * the layers downstream.
   */
  private cacheFrontiers(layer: tf.layers.Layer): { split: GraphSplit; frontiers: tf.Tensor[][] } {
    const split = this.runner.split(layer);
    const frontiers = this.batches.map((b) =>
      tf.tidy(() => {
        const both = tf.concat([b.xs, b.adversarial]);
        return this.runner.frontier(split, both);
      }),
    );
    return { split, frontiers };
  }

  /** Attacks a batch; FGSM also yields the clean predictions of its forward pass. */
  private attack(b: Batch): { adversarial: tf.Tensor; cleanPredictions?: tf.Tensor1D } {
    if (this.opts.attack === 'pgd') {
      const settings = this.opts.pgd as { steps: number; stepSize: number };
      return {
        adversarial: pgd(this.model, b.xs, b.oneHot, this.opts.epsilon, {
          ...settings,
          clip: this.opts.clip,
          output: this.opts.output,
          batchSize: b.xs.shape[0],
        }),
      };
    }
    return fgsmBatch(this.logits, b.xs, b.oneHot, this.opts.epsilon, this.opts.clip);
  }

  private cleanCorrect(b: Batch, predictions?: tf.Tensor1D): number {
    if (predictions && this.opts.strategy === 'fast') {
      const correct = countCorrect(predictions, b.ids);
      predictions.dispose();
      return correct;
    }
    predictions?.dispose();
    return this.predictCorrect(b.xs, b.ids);
  }

  private predictCorrect(xs: tf.Tensor, ids: tf.Tensor1D): number {
    const out = this.runner.predict(xs);
    const correct = countCorrect(out, ids);
    out.dispose();
    return correct;
  }
}
