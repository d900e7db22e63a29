import * as tf from '@tensorflow/tfjs';
import type { AnalysisReport } from '../analysis/types';
import { resolveLogs, type NumericLogs } from '../../callbacks/logs';
import { summaryLogs, type SynapticFilterCallback } from '../../callbacks/synaptic-filter-callback';
import type { SelectiveRetrainCallback } from '../../callbacks/selective-retrain-callback';
import { commitCheckpoint } from './checkpoint';
import { recordEpoch, recordReport } from './epochs';
import { evaluateAccuracy, evaluatePgdAccuracy, type EvaluateOptions } from './evaluate';
import { renameReport, type WeightNames } from './names';
import type { PhasePlan } from './phases';
import { formatSeconds, type TrainingProgressCallback } from './progress';
import { RUN_FILES, type MetricRow } from './run-folder';
import { numericRow, type CheckpointState, type RunContext } from './run-context';
import type { Recipe } from './schema';

/** Options of {@link EpochRecorder}. */
export interface EpochRecorderOptions {
  ctx: RunContext;
  plan: PhasePlan;
  /** The name translation of the phase's model (reports are recorded under stable names). */
  names: WeightNames;
  /** The progress display of the phase's batches (the recorder ends each epoch's task). */
  display: TrainingProgressCallback;
  /** The phase's analysis, when it has one (placed before the recorder). */
  analysis?: SynapticFilterCallback;
  /** The phase's selective retraining, when it has one (placed before the recorder). */
  selective?: SelectiveRetrainCallback;
  /** Whatever freezes layers in this phase (selective or random-freeze), for the frozen count. */
  freezer?: { readonly frozenLayers: string[] };
  /** The epoch the fit starts at. */
  initialEpoch: number;
}

/** The test-set evaluation options of a recipe. */
function evaluationOptions(recipe: Recipe): EvaluateOptions {
  const { epsilon, batchSize, clip, output } = recipe.analysis;
  return { epsilon, batchSize, clip, output };
}

/**
 * The weight elements frozen in `model`'s layers named `frozen` (their variables' `trainable`
 * flag off, as SelectiveRetrainCallback and RandomFreezeCallback set it) and the elements that
 * train or were frozen so (the weights a user made non-trainable count in neither).
 */
export function frozenWeights(
  model: tf.LayersModel,
  frozen: readonly string[],
): { frozen: number; total: number } {
  const names = new Set(frozen);
  let frozenCount = 0;
  let total = 0;
  for (const layer of model.layers) {
    for (const w of layer.weights) {
      const size = w.shape.reduce<number>((a, b) => a * (b ?? 0), 1);
      const isFrozen = names.has(layer.name) && !w.trainable;
      if (isFrozen) frozenCount += size;
      if (isFrozen || w.trainable) total += size;
    }
  }
  return { frozen: frozenCount, total };
}

const fmt = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : String(v));

/**
 * Records each epoch of a runner phase, placed after the phase's analysis and selective
 * retraining and before its progress display. At each epoch end: evaluates the model on the
 * test set (clean, FGSM, and PGD at the phase's last epoch), appends the metric row, writes the
 * epoch's analysis, the label grids, the frozen layers and the metrics to the run folder, logs
 * the epoch to the tracker, saves the checkpoint (weights, optimiser, and the callbacks' states)
 * and points the run manifest at it, ends the epoch's progress task, calls the caller's
 * `onEpochEnd` and stops training when the run was aborted.
 */
export class EpochRecorder extends tf.Callback {
  /** The epoch running now (the phase's data order follows it). */
  epoch: number;

  constructor(private readonly options: EpochRecorderOptions) {
    super();
    this.epoch = options.initialEpoch;
  }

  override async onEpochBegin(epoch: number): Promise<void> {
    this.epoch = epoch;
  }

  override async onEpochEnd(index: number, logs?: tf.Logs): Promise<void> {
    const { ctx, plan, freezer, display } = this.options;
    // Records count the epochs finished (see EPOCH_CONVENTION); tfjs gives the 0-based index.
    const epoch = recordEpoch(index);
    const report = this.epochReport(index);
    const row = await this.measure(epoch, await resolveLogs(logs), report);
    ctx.rows.push(row);
    this.writeRecords(epoch, report);
    await ctx.tracker?.logEpoch(plan.id, epoch, numericRow(row));
    await this.checkpoint(epoch);
    display.finishEpoch(
      `test ${fmt(row.test_acc)}, FGSM ${fmt(row.test_fgsm_acc)}` +
        (row.test_pgd_acc !== undefined ? `, PGD ${fmt(row.test_pgd_acc)}` : '') +
        (freezer ? `, frozen ${freezer.frozenLayers.length}` : '') +
        ` (evaluated in ${formatSeconds(Number(row.evaluation_seconds ?? 0))})`,
    );
    ctx.hooks.onEpochEnd?.(plan.id, epoch);
    if (ctx.shouldStop()) this.trainedModel().stopTraining = true;
  }

  private trainedModel(): tf.LayersModel {
    return this.model as tf.LayersModel;
  }

  /** The analysis report of this epoch (tfjs index), as recorded, if the analysis ran. */
  private epochReport(index: number): AnalysisReport | undefined {
    const latest = this.options.analysis?.latest;
    return latest?.epoch === index
      ? renameReport(recordReport(latest), this.options.names.toStable)
      : undefined;
  }

  /** The epoch's metric row: training logs, test accuracies, analysis summary, frozen count. */
  private async measure(
    epoch: number,
    values: NumericLogs,
    report: AnalysisReport | undefined,
  ): Promise<MetricRow> {
    const { ctx, plan, freezer } = this.options;
    const model = this.trainedModel();
    const started = Date.now();
    const evaluation = await evaluateAccuracy(model, ctx.data.test, evaluationOptions(ctx.recipe));
    // A phase's last epoch also gets the stronger PGD check (default settings, PGD_DEFAULTS).
    const pgdAccuracy =
      epoch === plan.epochs
        ? evaluatePgdAccuracy(model, ctx.data.test, evaluationOptions(ctx.recipe))
        : undefined;
    return {
      phase: plan.id,
      epoch,
      loss: values.loss,
      acc: values.acc ?? values.accuracy,
      test_acc: evaluation.clean,
      test_fgsm_acc: evaluation.adversarial,
      ...(pgdAccuracy !== undefined ? { test_pgd_acc: pgdAccuracy } : {}),
      ...(report ? summaryLogs(report) : {}),
      ...(freezer ? { frozen_layers: freezer.frozenLayers.length } : {}),
      evaluation_seconds: (Date.now() - started) / 1000,
    };
  }

  /** Writes the epoch's analysis, labels, frozen layers and the metrics to the run folder. */
  private writeRecords(epoch: number, report: AnalysisReport | undefined): void {
    const { ctx, plan, freezer } = this.options;
    const { folder } = ctx;
    if (report) {
      folder.writeAnalysis(plan.id, report);
      ctx.tracker?.logAnalysis(plan.id, report);
      folder.writeLabels(folder.analysedPhases());
    }
    if (freezer) {
      const layers = freezer.frozenLayers;
      const weights = frozenWeights(this.trainedModel(), layers);
      ctx.frozen.push({ phase: plan.id, epoch, layers, weights });
      folder.writeJson(RUN_FILES.frozen, ctx.frozen);
    }
    folder.writeMetrics(ctx.rows);
  }

  /** Saves the epoch's checkpoint with the callbacks' states and records it in the manifest. */
  private async checkpoint(epoch: number): Promise<void> {
    const { ctx, plan, analysis, selective, names } = this.options;
    const state: CheckpointState = {
      phase: plan.id,
      epoch,
      reports: analysis
        ? analysis.getState().reports.map((r) => renameReport(r, names.toStable))
        : [],
      ...(selective ? { selective: selective.getState() } : {}),
    };
    const prune = ctx.recipe.tracking.checkpoints === 'last';
    const model = this.trainedModel();
    await commitCheckpoint(ctx.folder, ctx.info, { phase: plan.id, epoch }, model, state, prune);
  }
}
