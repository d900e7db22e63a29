import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendId } from '../kernels/backend';
import type { AnalysisReport } from '../analysis/types';
import { SynapticFilterCallback, summaryLogs } from '../../callbacks/synaptic-filter-callback';
import { SelectiveRetrainCallback } from '../../callbacks/selective-retrain-callback';
import { resolveLogs } from '../../callbacks/logs';
import { buildModel } from '../models';
import {
  createProgress,
  analysisProgress,
  TrainingProgressCallback,
  type Progress,
} from './progress';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';
import { compareBranches, type Comparison } from './comparison';
import { disposeRecipeData, epochOrder, loadRecipeData, type RecipeData } from './data';
import { evaluateAccuracy, evaluatePgdAccuracy } from './evaluate';
import { renameReport, weightNames, type WeightNames } from './names';
import { planPhases, type PhasePlan } from './phases';
import {
  RUN_FILES,
  RunFolder,
  type FrozenRecord,
  type MetricRow,
  type RunManifest,
  type RunOutcome,
} from './run-folder';
import type { Recipe } from './schema';
import { startMlflowTracker, type RunTracker } from './tracking';

/** Options of {@link runRecipe}. */
export interface RunRecipeOptions {
  /** Parent folder of new run folders; default `runs`. */
  outDir?: string;
  /** Continue this run folder from its newest checkpoint instead of starting a new run. */
  resume?: string;
  /** Progress display; default `createProgress()` (bars on a terminal, plain lines otherwise). */
  progress?: Progress;
  /** Stops the run cleanly at the next epoch end when aborted (the CLI wires Ctrl-C to it). */
  signal?: AbortSignal;
  /** tfjs backend; default: `initBackend()`'s choice. */
  backend?: BackendId;
  /** Write the run's report at the end with `reporter` (default true). */
  report?: boolean;
  /**
   * Writes the run's report (the CLI passes the report layer's `writeRunReport`); it is
   * uploaded to MLflow with the run's other files. Without it no report is written.
   */
  reporter?: RunReporter;
  /**
   * Nest this run's MLflow run under that MLflow run (its `mlflow.parentRunId`), as
   * `npm run reproduce` does with one run per system and seed.
   */
  mlflowParentRunId?: string;
  /** Called after each epoch is recorded and checkpointed. */
  onEpochEnd?: (phase: string, epoch: number) => void;
}

/** Writes a report for a run folder and returns the report file's path. */
export type RunReporter = (runDir: string) => Promise<string>;

/** What {@link runRecipe} returns. */
export interface RunResult {
  /** The run folder. */
  dir: string;
  status: RunOutcome;
  rows: MetricRow[];
  comparison?: Comparison;
  /** MLflow run id of this invocation, when tracked. */
  mlflowRunId?: string;
  /** MLflow child run ids of the retraining branches, by phase (`normal-s0`, …), when tracked. */
  mlflowChildRuns?: Record<string, string>;
}

/** What a checkpoint's `state.json` holds. */
interface CheckpointState {
  phase: string;
  epoch: number;
  /** The phase's analysis reports so far (start report included), under stable weight names. */
  reports: AnalysisReport[];
  /** Selective phases: the epoch whose report decided the frozen set now (−1: the start one). */
  decisiveEpoch?: number;
}

function makeOptimizer(training: Recipe['training']): tf.Optimizer {
  switch (training.optimizer) {
    case 'adam':
      return tf.train.adam(training.learningRate);
    case 'sgd':
      return tf.train.sgd(training.learningRate);
    case 'momentum':
      return tf.train.momentum(training.learningRate, 0.9);
    case 'rmsprop':
      return tf.train.rmsprop(training.learningRate);
  }
}

function analyzeOptions(recipe: Recipe, names: WeightNames) {
  const { enabled: _e, examples: _x, every: _v, atStart: _s, ...options } = recipe.analysis;
  const { parameters } = options;
  if (parameters === undefined) return options;
  return {
    ...options,
    parameters: Array.isArray(parameters)
      ? parameters.map(names.toCurrent)
      : names.toCurrent(parameters),
  };
}

/** Batches of one epoch in the seeded order of `epochOrder(seed, epoch())`. */
function epochBatches(
  data: RecipeData,
  batchSize: number,
  seed: number,
  epoch: () => number,
): tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }> {
  const n = data.train.xs.shape[0];
  return tf.data.generator(function* () {
    const order = epochOrder(n, seed, epoch());
    for (let start = 0; start < n; start += batchSize) {
      const indices = tf.tensor1d(order.slice(start, start + batchSize), 'int32');
      const batch = tf.tidy(() => ({
        xs: tf.gather(data.train.xs, indices),
        ys: tf.gather(data.train.ys, indices),
      }));
      indices.dispose();
      yield batch;
    }
  });
}

const fmt = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : String(v));

/** Shared state of one invocation. */
class RunContext {
  readonly rows: MetricRow[];
  readonly frozen: FrozenRecord[];
  stopRequested = false;

  constructor(
    readonly recipe: Recipe,
    readonly folder: RunFolder,
    readonly info: RunManifest,
    readonly data: RecipeData,
    readonly progress: Progress,
    readonly tracker: RunTracker | undefined,
    readonly options: RunRecipeOptions,
  ) {
    this.rows = folder.readMetrics();
    this.frozen = folder.exists(RUN_FILES.frozen)
      ? folder.readJson<FrozenRecord[]>(RUN_FILES.frozen)
      : [];
    // Anything recorded after the newest checkpoint is redone.
    const done = (phase: string, epoch: number) => {
      if (info.completedPhases.includes(phase)) return true;
      return info.checkpoint?.phase === phase && epoch <= info.checkpoint.epoch;
    };
    this.rows.splice(0, this.rows.length, ...this.rows.filter((r) => done(r.phase, r.epoch)));
    this.frozen.splice(0, this.frozen.length, ...this.frozen.filter((r) => done(r.phase, r.epoch)));
  }

  saveInfo(): void {
    this.folder.writeInfo(this.info);
  }
}

/** Runs one phase (one `fit`); returns false when it stopped early. */
async function runPhase(ctx: RunContext, plan: PhasePlan): Promise<boolean> {
  const { recipe, folder, data, progress } = ctx;
  const model = buildModel(recipe.model.architecture, {
    inputShape: data.inputShape,
    classes: data.classes,
    width: recipe.model.width,
    seed: recipe.training.seed,
  });
  try {
    model.compile({
      optimizer: makeOptimizer(recipe.training),
      loss: 'categoricalCrossentropy',
      metrics: ['accuracy'],
    });
    const names = weightNames(model);
    const toCurrent = (r: AnalysisReport) => renameReport(r, names.toCurrent);
    const toStable = (r: AnalysisReport) => renameReport(r, names.toStable);
    await ctx.tracker?.startPhase(plan);
    let initialEpoch = 0;
    /** The phase's reports so far, in this model's variable names. */
    let reports: AnalysisReport[] = [];
    let decisiveEpoch: number | undefined;
    const checkpoint = ctx.info.checkpoint;
    if (checkpoint && checkpoint.phase === plan.id) {
      const state = await loadCheckpoint<CheckpointState>(folder.file(checkpoint.dir), model);
      initialEpoch = checkpoint.epoch + 1;
      reports = state.reports.map(toCurrent);
      decisiveEpoch = state.decisiveEpoch;
      progress.log(`${plan.id}: resuming at epoch ${initialEpoch + 1}/${plan.epochs}`);
    } else if (plan.from) {
      const source = folder.checkpointDir(plan.from, recipe.training.epochs - 1);
      const state = await loadCheckpoint<CheckpointState>(folder.file(source), model);
      if (plan.kind === 'selective') {
        const last = state.reports[state.reports.length - 1];
        if (!last)
          throw new Error(
            `${plan.id}: the ${plan.from} phase left no analysis to decide what to freeze`,
          );
        // The labels of the shared checkpoint decide the first frozen set: to this branch they
        // describe the model before its first epoch.
        const start = { ...last, epoch: -1 };
        reports = [toCurrent(start)];
        folder.writeAnalysis(plan.id, start);
        ctx.tracker?.logAnalysis(plan.id, start);
      }
    }
    if (initialEpoch >= plan.epochs) {
      await ctx.tracker?.endPhase(plan.id, 'FINISHED');
      return true;
    }

    let currentEpoch = initialEpoch;
    const batchSize = recipe.training.batchSize;
    const batches = Math.ceil(data.train.xs.shape[0] / batchSize);
    const dataset = epochBatches(data, batchSize, plan.seed, () => currentEpoch);
    const list: tf.Callback[] = [];

    let analysis: SynapticFilterCallback | undefined;
    let selective: SelectiveRetrainCallback | undefined;
    const analysisTask = analysisProgress(
      progress,
      () => `${plan.id} analysis after epoch ${currentEpoch + 1}`,
    );
    if (plan.analyse) {
      analysis = new SynapticFilterCallback({
        ...analyzeOptions(recipe, names),
        data: data.analysis,
        every: plan.kind === 'selective' ? recipe.retraining.every : recipe.analysis.every,
        atStart: plan.kind === 'train' && recipe.analysis.atStart && initialEpoch === 0,
        onProgress: (p) =>
          analysisTask.onProgress({ ...p, parameter: names.toStable(p.parameter) }),
      });
      list.push(analysis);
      if (plan.kind === 'selective') {
        selective = new SelectiveRetrainCallback({
          analysis,
          score: recipe.retraining.score,
          filters: recipe.retraining.filters,
          granularity: recipe.retraining.granularity,
        });
        list.push(selective);
        // SelectiveRetrainCallback freezes at train begin from a report of epoch −1 only: hand it
        // a copy of the report that decided the frozen set at the checkpoint, then put the real
        // list back.
        const decisive =
          decisiveEpoch === undefined
            ? initialEpoch === 0
              ? reports.find((r) => r.epoch === -1)
              : undefined
            : reports.find((r) => r.epoch === decisiveEpoch);
        const real = reports;
        analysis.setState({ reports: decisive ? [...real, { ...decisive, epoch: -1 }] : real });
        const restore = analysis;
        list.push(
          new (class extends tf.Callback {
            override async onTrainBegin(): Promise<void> {
              restore.setState({ reports: real });
            }
          })(),
        );
      } else {
        analysis.setState({ reports });
      }
    }

    const display = new TrainingProgressCallback(progress, plan.id, batches, plan.epochs);
    const recorder = new (class extends tf.Callback {
      override async onEpochBegin(epoch: number): Promise<void> {
        currentEpoch = epoch;
      }

      override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
        const values = await resolveLogs(logs);
        const started = Date.now();
        const evaluation = await evaluateAccuracy(model, data.test, {
          epsilon: recipe.analysis.epsilon,
          batchSize: recipe.analysis.batchSize,
          clip: recipe.analysis.clip,
          output: recipe.analysis.output,
        });
        // A phase's last epoch also gets the stronger PGD check (10 steps of ε/4).
        const pgdAccuracy =
          epoch === plan.epochs - 1
            ? evaluatePgdAccuracy(model, data.test, {
                epsilon: recipe.analysis.epsilon,
                batchSize: recipe.analysis.batchSize,
                clip: recipe.analysis.clip,
                output: recipe.analysis.output,
              })
            : undefined;
        const latest = analysis?.latest;
        const report = latest?.epoch === epoch ? toStable(latest) : undefined;
        const row: MetricRow = {
          phase: plan.id,
          epoch,
          loss: values.loss,
          acc: values.acc ?? values.accuracy,
          test_acc: evaluation.clean,
          test_fgsm_acc: evaluation.adversarial,
          ...(pgdAccuracy !== undefined ? { test_pgd_acc: pgdAccuracy } : {}),
          ...(report ? summaryLogs(report) : {}),
          ...(selective ? { frozen_layers: selective.frozenLayers.length } : {}),
          evaluation_seconds: (Date.now() - started) / 1000,
        };
        ctx.rows.push(row);
        if (report) {
          folder.writeAnalysis(plan.id, report);
          ctx.tracker?.logAnalysis(plan.id, report);
          folder.writeLabels(folder.analysedPhases());
        }
        if (selective) {
          const newest = selective.history[selective.history.length - 1];
          if (newest && newest.epoch === epoch && !newest.skipped) decisiveEpoch = epoch;
          ctx.frozen.push({ phase: plan.id, epoch, layers: selective.frozenLayers });
          folder.writeJson(RUN_FILES.frozen, ctx.frozen);
        }
        folder.writeMetrics(ctx.rows);
        const numeric: Record<string, number> = {};
        for (const [k, v] of Object.entries(row)) if (typeof v === 'number') numeric[k] = v;
        await ctx.tracker?.logEpoch(plan.id, epoch, numeric);

        const dir = folder.checkpointDir(plan.id, epoch);
        const state: CheckpointState = {
          phase: plan.id,
          epoch,
          reports: analysis ? analysis.getState().reports.map(toStable) : [],
          decisiveEpoch,
        };
        await saveCheckpoint(folder.file(dir), model, state);
        if (recipe.tracking.checkpoints === 'last') folder.pruneCheckpoints(plan.id, dir);
        ctx.info.checkpoint = { phase: plan.id, epoch, dir };
        ctx.saveInfo();

        display.finishEpoch(
          `loss ${fmt(row.loss)}, acc ${fmt(row.acc)}, test ${fmt(row.test_acc)}, ` +
            `FGSM ${fmt(row.test_fgsm_acc)}` +
            (selective ? `, frozen ${selective.frozenLayers.length}` : ''),
        );
        ctx.options.onEpochEnd?.(plan.id, epoch);
        if (ctx.stopRequested || ctx.options.signal?.aborted) {
          ctx.stopRequested = true;
          model.stopTraining = true;
        }
      }
    })();
    list.push(recorder, display);

    await model.fitDataset(dataset, {
      epochs: plan.epochs,
      initialEpoch,
      callbacks: list,
      verbose: 0,
    });
    analysisTask.finish();
    const last = ctx.info.checkpoint;
    const complete = !(last?.phase === plan.id && last.epoch < plan.epochs - 1);
    if (complete) await ctx.tracker?.endPhase(plan.id, 'FINISHED');
    return complete;
  } finally {
    model.optimizer?.dispose();
    model.dispose();
  }
}

/**
 * A resumed run's new MLflow run gets the history so far, analyses included, and its branches
 * their child runs, so that it shows the whole run.
 */
async function replayHistory(
  tracker: RunTracker,
  ctx: RunContext,
  plans: readonly PhasePlan[],
): Promise<void> {
  for (const plan of plans) {
    const own = ctx.rows.filter((row) => row.phase === plan.id);
    if (own.length === 0) continue;
    await tracker.startPhase(plan);
    const epochs = new Set(own.map((row) => row.epoch));
    for (const report of ctx.folder.readAnalyses(plan.id)) {
      const epoch = report.epoch ?? 0;
      if (epoch < 0 || epochs.has(epoch)) tracker.logAnalysis(plan.id, report);
    }
    for (const row of own) {
      const numeric: Record<string, number> = {};
      for (const [k, v] of Object.entries(row)) if (typeof v === 'number') numeric[k] = v;
      await tracker.logEpoch(row.phase, row.epoch, numeric);
    }
    if (ctx.info.completedPhases.includes(plan.id)) await tracker.endPhase(plan.id, 'FINISHED');
  }
}

function newInfo(folder: RunFolder, recipe: Recipe): RunManifest {
  const now = new Date().toISOString();
  return {
    id: folder.id,
    recipe: recipe.name,
    status: 'running',
    created: now,
    updated: now,
    completedPhases: [],
    mlflowRuns: [],
    invocations: [],
  };
}

/**
 * Runs a validated recipe: trains, analyses at the chosen epochs, and (with `retraining`)
 * compares normal and selective retraining from the same checkpoint, writing everything to a
 * run folder (see {@link RunFolder}) and to MLflow when `MLFLOW_TRACKING_URI` is set. Each epoch
 * ends with a checkpoint, so an aborted run (`signal`) keeps everything up to its last finished
 * epoch, and `resume` continues it with the result an uninterrupted run would have had.
 */
export async function runRecipe(
  recipe: Recipe,
  options: RunRecipeOptions = {},
): Promise<RunResult> {
  const progress = options.progress ?? createProgress();
  let folder: RunFolder;
  let info: RunManifest;
  if (options.resume) {
    folder = RunFolder.open(options.resume);
    info = folder.readInfo();
    if (info.status === 'finished') {
      progress.log(`${folder.dir} has already finished; nothing to resume`);
    }
  } else {
    folder = RunFolder.create(options.outDir ?? 'runs', recipe.name);
    folder.writeJson(RUN_FILES.recipe, recipe);
    info = newInfo(folder, recipe);
  }
  const invocation: RunManifest['invocations'][number] = { started: new Date().toISOString() };
  info.invocations.push(invocation);
  info.status = 'running';
  delete info.error;
  folder.writeInfo(info);
  progress.log(`run folder: ${path.relative(process.cwd(), folder.dir) || folder.dir}`);

  const backend = await initBackend({
    backend: options.backend,
    log: (m) => progress.log(m),
  });
  info.backend = backend.id;

  let tracker: RunTracker | undefined;
  let data: RecipeData | undefined;
  let status: RunOutcome = 'failed';
  let failure: unknown;
  let comparison: Comparison | undefined;
  try {
    data = await loadRecipeData(recipe);
    const { model: m } = recipe;
    if (m.inputShape && m.inputShape.join() !== data.inputShape.join()) {
      throw new Error(
        `/model/inputShape [${m.inputShape}] does not match the dataset's [${data.inputShape}]`,
      );
    }
    if (m.classes !== undefined && m.classes !== data.classes) {
      throw new Error(`/model/classes ${m.classes} does not match the dataset's ${data.classes}`);
    }
    tracker = await startMlflowTracker({
      recipe,
      runDir: folder.dir,
      resumedFrom: info.mlflowRuns[info.mlflowRuns.length - 1],
      parentRunId: options.mlflowParentRunId,
      warn: (line) => progress.log(line),
    });
    const ctx = new RunContext(recipe, folder, info, data, progress, tracker, options);
    const plans = planPhases(recipe);
    if (tracker) {
      info.mlflowRuns.push(tracker.runId);
      info.mlflowChildRuns = tracker.childRuns;
      progress.log(`MLflow run ${tracker.runId}`);
      await replayHistory(tracker, ctx, plans);
    }
    folder.writeInfo(info);
    for (const plan of plans) {
      if (info.completedPhases.includes(plan.id)) continue;
      if (options.signal?.aborted) break;
      const complete = await runPhase(ctx, plan);
      if (complete) info.completedPhases.push(plan.id);
      folder.writeInfo(info);
      if (!complete || ctx.stopRequested) break;
    }
    status = plans.every((p) => info.completedPhases.includes(p.id)) ? 'finished' : 'killed';
    if (status === 'killed') {
      progress.log(
        `stopped; the run folder keeps everything up to the last finished epoch. ` +
          `Continue with: tfjs-antifragile run --resume ${path.relative(process.cwd(), folder.dir) || folder.dir}`,
      );
    }
    comparison = compareBranches(ctx.rows, info.completedPhases);
    if (comparison) {
      folder.writeJson(RUN_FILES.comparison, comparison);
      tracker?.logComparison(comparison);
    }
    return {
      dir: folder.dir,
      status,
      rows: ctx.rows,
      comparison,
      mlflowRunId: tracker?.runId,
      mlflowChildRuns: tracker ? { ...tracker.childRuns } : undefined,
    };
  } catch (err) {
    status = 'failed';
    failure = err;
    throw err;
  } finally {
    if (data) disposeRecipeData(data);
    info.status = status;
    invocation.ended = new Date().toISOString();
    invocation.status = status;
    if (failure !== undefined) info.error = String((failure as Error).message ?? failure);
    folder.writeInfo(info);
    if ((options.report ?? true) && options.reporter) {
      try {
        const file = await options.reporter(folder.dir);
        progress.log(`report: ${path.relative(process.cwd(), file) || file}`);
        tracker?.logArtifact(RUN_FILES.report, fs.readFileSync(file, 'utf8'), 'text/html');
      } catch (err) {
        progress.log(`report.html could not be written: ${(err as Error).message}`);
      }
    }
    if (tracker) {
      for (const file of [RUN_FILES.recipe, RUN_FILES.metricsCsv, RUN_FILES.labels]) {
        if (folder.exists(file)) {
          tracker.logArtifact(file, fs.readFileSync(folder.file(file), 'utf8'), 'text/plain');
        }
      }
      const mlflowStatus =
        status === 'finished' ? 'FINISHED' : status === 'killed' ? 'KILLED' : 'FAILED';
      await tracker.end(mlflowStatus, failure);
    }
    progress.close();
  }
}
