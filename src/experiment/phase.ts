import * as tf from '@tensorflow/tfjs';
import type { AnalysisReport } from '../analysis/types';
import { SynapticFilterCallback } from '../../callbacks/synaptic-filter-callback';
import {
  SelectiveRetrainCallback,
  type SelectiveRetrainState,
} from '../../callbacks/selective-retrain-callback';
import { RandomFreezeCallback } from '../../callbacks/random-freeze-callback';
import { adversarialBatches } from '../analysis/adversarial-batches';
import { buildModel } from '../models';
import { analysisProgress, TrainingProgressCallback } from './progress';
import { CHECKPOINT_FILES, loadCheckpoint } from './checkpoint';
import { epochOrder, type RecipeData } from './data';
import { EpochRecorder } from './epoch-recorder';
import { recordReport } from './epochs';
import { renameReport, weightNames, type WeightNames } from './names';
import { freezesByLabels, trainsAdversarially, type PhasePlan } from './phases';
import { randomFreezePlan } from './random-freeze-plan';
import type { CheckpointState, RunContext } from './run-context';
import type { RunManifest } from './run-folder';
import type { Recipe } from './schema';

/** Where a phase starts: its first epoch and the callbacks' states to restore. */
interface PhaseStart {
  initialEpoch: number;
  /** The analysis' reports so far, in the phase model's variable names. */
  reports: AnalysisReport[];
  /** The selective retraining's state at the checkpoint (resumed selective phases). */
  selective?: SelectiveRetrainState;
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

/** The recipe's model, built with its seed and compiled with a fresh optimiser. */
function buildPhaseModel(recipe: Recipe, data: RecipeData): tf.LayersModel {
  const model = buildModel(recipe.model.architecture, {
    inputShape: data.inputShape,
    classes: data.classes,
    width: recipe.model.width,
    seed: recipe.training.seed,
  });
  model.compile({
    optimizer: makeOptimizer(recipe.training),
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
  return model;
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

/** Resumes a phase from its own newest checkpoint (weights, optimiser, callbacks' states). */
async function resumePhase(
  ctx: RunContext,
  plan: PhasePlan,
  checkpoint: NonNullable<RunManifest['checkpoint']>,
  model: tf.LayersModel,
  names: WeightNames,
): Promise<PhaseStart> {
  const dir = ctx.folder.file(checkpoint.dir);
  const state = await loadCheckpoint<CheckpointState>(dir, model);
  const initialEpoch = checkpoint.epoch; // epochs finished = the next 0-based index
  if (freezesByLabels(plan.kind) && initialEpoch < plan.epochs && !state.selective) {
    throw new Error(
      `${plan.id}: ${dir}/${CHECKPOINT_FILES.state} has no 'selective' state (the frozen ` +
        `weights), which this version needs to resume selective retraining; start a new run`,
    );
  }
  ctx.progress.log(`${plan.id}: resuming at epoch ${initialEpoch + 1}/${plan.epochs}`);
  return {
    initialEpoch,
    reports: state.reports.map((r) => renameReport(r, names.toCurrent)),
    selective: state.selective,
  };
}

/**
 * Starts a retraining branch from the final checkpoint of the phase it comes `from`. A
 * selective branch gets that phase's last analysis as its start report (epoch −1): to this
 * branch it describes the model before its first epoch, and it decides the first frozen set.
 */
async function branchPhase(
  ctx: RunContext,
  plan: PhasePlan & { from: string },
  model: tf.LayersModel,
  names: WeightNames,
): Promise<PhaseStart> {
  const { folder, recipe } = ctx;
  const source = folder.checkpointDir(plan.from, recipe.training.epochs);
  const state = await loadCheckpoint<CheckpointState>(folder.file(source), model);
  if (!freezesByLabels(plan.kind)) return { initialEpoch: 0, reports: [] };
  const last = state.reports[state.reports.length - 1];
  if (!last) {
    throw new Error(`${plan.id}: the ${plan.from} phase left no analysis to decide what to freeze`);
  }
  const start = { ...last, epoch: -1 };
  folder.writeAnalysis(plan.id, recordReport(start));
  ctx.tracker?.logAnalysis(plan.id, recordReport(start));
  return { initialEpoch: 0, reports: [renameReport(start, names.toCurrent)] };
}

/** Where the phase starts: its own checkpoint, the phase it branches from, or from scratch. */
function startPhase(
  ctx: RunContext,
  plan: PhasePlan,
  model: tf.LayersModel,
  names: WeightNames,
): Promise<PhaseStart> {
  const checkpoint = ctx.info.checkpoint;
  if (checkpoint?.phase === plan.id) return resumePhase(ctx, plan, checkpoint, model, names);
  if (plan.from) return branchPhase(ctx, { ...plan, from: plan.from }, model, names);
  return Promise.resolve({ initialEpoch: 0, reports: [] });
}

/** The phase's callbacks, in order: analysis, selective retraining, recorder, display. */
function phaseCallbacks(ctx: RunContext, plan: PhasePlan, names: WeightNames, start: PhaseStart) {
  const { recipe, data, progress } = ctx;
  const analysisTask = analysisProgress(
    progress,
    () => `${plan.id} analysis after epoch ${recorder.epoch + 1}`,
  );
  let analysis: SynapticFilterCallback | undefined;
  let selective: SelectiveRetrainCallback | undefined;
  if (plan.analyse) {
    analysis = new SynapticFilterCallback({
      ...analyzeOptions(recipe, names),
      data: data.analysis,
      every: plan.kind === 'train' ? recipe.analysis.every : recipe.retraining.every,
      atStart: plan.kind === 'train' && recipe.analysis.atStart && start.initialEpoch === 0,
      // A retraining arm's labels after its last epoch would decide nothing: skip that analysis.
      ...(plan.kind === 'train' ? {} : { lastEpoch: plan.epochs - 2 }),
      onProgress: (p) => analysisTask.onProgress({ ...p, parameter: names.toStable(p.parameter) }),
    });
    analysis.setState({ reports: start.reports });
  }
  if (analysis && freezesByLabels(plan.kind)) {
    const { score, filters, granularity, tolerance } = recipe.retraining;
    selective = new SelectiveRetrainCallback({ analysis, score, filters, granularity, tolerance });
    if (start.selective) selective.setState(start.selective);
  }
  const randomFreeze =
    plan.kind === 'random-freeze'
      ? new RandomFreezeCallback({
          ...randomFreezePlan(ctx, plan),
          seed: plan.seed,
          initialEpoch: start.initialEpoch,
        })
      : undefined;
  const batches = Math.ceil(data.train.xs.shape[0] / recipe.training.batchSize);
  const display = new TrainingProgressCallback(progress, plan.id, batches, plan.epochs);
  const { initialEpoch } = start;
  const recorder = new EpochRecorder({
    ctx,
    plan,
    names,
    display,
    analysis,
    selective,
    freezer: selective ?? randomFreeze,
    initialEpoch,
  });
  // The epoch's line ends with its batches (display.batchesEnd), before the analysis runs.
  const callbacks = [
    display.batchesEnd,
    analysis,
    selective,
    randomFreeze,
    recorder,
    display,
  ].filter((c): c is NonNullable<typeof c> => c !== undefined);
  return { callbacks, recorder, analysisTask };
}

/** The adversarial arms' batches: a share of each replaced by attacks on the current weights. */
function adversarialData(
  ctx: RunContext,
  plan: PhasePlan,
  model: tf.LayersModel,
  batches: tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>,
): tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }> {
  const { analysis, retraining } = ctx.recipe;
  return adversarialBatches(model, batches, {
    attack: retraining.adversarial.attack,
    epsilon: retraining.adversarial.epsilon ?? analysis.epsilon,
    ratio: retraining.adversarial.ratio,
    clip: analysis.clip,
    output: analysis.output,
    seed: plan.seed,
  });
}

/** Fits the phase from `start`; returns false when it stopped before its last epoch. */
async function fitPhase(
  ctx: RunContext,
  plan: PhasePlan,
  model: tf.LayersModel,
  names: WeightNames,
  start: PhaseStart,
): Promise<boolean> {
  const { callbacks, recorder, analysisTask } = phaseCallbacks(ctx, plan, names, start);
  const batchSize = ctx.recipe.training.batchSize;
  const batches = epochBatches(ctx.data, batchSize, plan.seed, () => recorder.epoch);
  await model.fitDataset(
    trainsAdversarially(plan.kind) ? adversarialData(ctx, plan, model, batches) : batches,
    {
      epochs: plan.epochs,
      initialEpoch: start.initialEpoch,
      callbacks,
      verbose: 0,
    },
  );
  analysisTask.finish();
  const last = ctx.info.checkpoint;
  return !(last?.phase === plan.id && last.epoch < plan.epochs);
}

/**
 * Runs one phase (one `fitDataset`) of a run: builds and compiles the model, starts it from its
 * checkpoint or the phase it branches from, fits it with the analysis, selective retraining,
 * {@link EpochRecorder} and progress callbacks, and ends the phase's tracking when it completed.
 * Returns false when it stopped early.
 */
export async function runPhase(ctx: RunContext, plan: PhasePlan): Promise<boolean> {
  const model = buildPhaseModel(ctx.recipe, ctx.data);
  try {
    const names = weightNames(model);
    await ctx.tracker?.startPhase(plan);
    const start = await startPhase(ctx, plan, model, names);
    const complete =
      start.initialEpoch >= plan.epochs || (await fitPhase(ctx, plan, model, names, start));
    if (complete && ctx.tracker) {
      await ctx.tracker.logModel(plan.id, model);
      await ctx.tracker.endPhase(plan.id, 'FINISHED');
    }
    return complete;
  } finally {
    model.optimizer?.dispose();
    model.dispose();
  }
}
