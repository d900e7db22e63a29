import * as tf from '@tensorflow/tfjs';
import {
  analyze,
  checkAnalysisSetup,
  invariance,
  labelCounts,
  labelTotals,
  resolveAnalyzeOptions,
  type AnalysisData,
  type AnalysisReport,
  type AnalyzeOptions,
  type InvarianceOptions,
  type InvarianceReport,
  type ResolvedOptions,
} from '../src/analysis';
import { LABELS, SCORE_IDS } from '../src/analysis/types';
import { checkCallbackTfjs, checkModelTfjs } from '../src/util/tfjs-copies';

/** Options of {@link SynapticFilterCallback}: every option of `analyze`, plus these. */
export interface SynapticFilterCallbackOptions extends AnalyzeOptions {
  /** Evaluation data (clean); the adversarial set is made from it. Required. */
  data: AnalysisData;
  /** Analyse at the end of every `every`-th epoch (1-based count); default 1. */
  every?: number;
  /** Also analyse before the first epoch (the report gets `epoch: -1`); default false. */
  atStart?: boolean;
  /**
   * Analyse no epoch after this one (0-based; −1: none at epoch ends), e.g. to skip the analysis
   * after a retraining's final epoch, whose labels would decide nothing; default: no limit.
   */
  lastEpoch?: number;
  /** Called with each report, after it is stored and before the epoch's logs go on. */
  onAnalysis?: (report: AnalysisReport) => void | Promise<void>;
}

/** The summary numbers added to the logs of an analysed epoch (see {@link summaryLogs}). */
export type AnalysisLogs = Record<string, number>;

/**
 * Summary numbers of a report, as added to the epoch logs: for each score `s` the number of
 * (parameter, filter) pairs labelled fragile / robust / antifragile (`fragile_s`, `robust_s`,
 * `antifragile_s`) and the mean score (`psi_s_mean`); the reference accuracies
 * (`analysis_clean_acc`, `analysis_adversarial_acc`) and the analysis time (`analysis_seconds`).
 */
export function summaryLogs(report: AnalysisReport): AnalysisLogs {
  const logs: AnalysisLogs = {};
  const totals = labelTotals(labelCounts(report));
  for (const score of SCORE_IDS) {
    const values = report.parameters.flatMap((p) =>
      Object.values(p.filters).flatMap((r) => (r ? [r.scores[score]] : [])),
    );
    for (const label of LABELS) logs[`${label}_${score}`] = totals[score][label];
    logs[`psi_${score}_mean`] =
      values.length > 0 ? values.reduce((sum, v) => sum + v, 0) / values.length : 0;
  }
  logs.analysis_clean_acc = report.reference.clean;
  logs.analysis_adversarial_acc = report.reference.adversarial;
  logs.analysis_seconds = report.seconds;
  return logs;
}

/**
 * Runs the synaptic-filtering analysis inside `model.fit` / `model.fitDataset`.
 *
 * Events, in order:
 * - constructor: options are validated (an error names the option and the value);
 * - `onTrainBegin`: the setup is checked against the model (data shape, parameter selection)
 *   and state is reset; with `atStart`, a first analysis runs (epoch −1);
 * - `onEpochEnd(epoch, logs)`: every `every`-th epoch, `analyze` runs on the epoch's weights;
 *   the report is stored in `reports` (with its `epoch`), passed to `onAnalysis`, and
 *   {@link summaryLogs} are added to `logs`, so callbacks placed after this one, and the
 *   returned `History`, see them. If the analysis throws, the weights are restored to the
 *   epoch's values and the error stops training.
 *
 * The weights after an analysis are bit-identical to those before it.
 */
export class SynapticFilterCallback extends tf.Callback {
  /** The analysis options, validated once here with their defaults filled in (frozen). */
  readonly analysisOptions: ResolvedOptions;
  readonly data: AnalysisData;
  readonly every: number;
  readonly atStart: boolean;
  readonly lastEpoch: number;
  private readonly onAnalysis?: (report: AnalysisReport) => void | Promise<void>;
  private readonly stored: AnalysisReport[] = [];
  private readonly failureListeners = new Set<() => void>();
  /** The `params` object of the fit whose `onTrainBegin` this callback last ran. */
  private trainParams?: tf.CustomCallbackArgs | object;

  constructor(options: SynapticFilterCallbackOptions) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new Error('SynapticFilterCallback: options must be an object with { data, epsilon }');
    }
    const {
      data,
      every = 1,
      atStart = false,
      lastEpoch = Infinity,
      onAnalysis,
      ...analysisOptions
    } = options;
    if (!data || !(data.xs instanceof tf.Tensor) || !(data.ys instanceof tf.Tensor)) {
      throw new Error(
        "SynapticFilterCallback: option 'data' must be { xs: tf.Tensor, ys: tf.Tensor }; got " +
          (data === undefined ? 'undefined' : typeof data),
      );
    }
    if (!Number.isInteger(every) || every < 1) {
      throw new Error(
        `SynapticFilterCallback: option 'every' must be an integer ≥ 1; got ${every}`,
      );
    }
    if (typeof atStart !== 'boolean') {
      throw new Error(
        `SynapticFilterCallback: option 'atStart' must be a boolean; got ${String(atStart)}`,
      );
    }
    if (lastEpoch !== Infinity && !(Number.isInteger(lastEpoch) && lastEpoch >= -1)) {
      throw new Error(
        `SynapticFilterCallback: option 'lastEpoch' must be an integer ≥ −1; got ${String(lastEpoch)}`,
      );
    }
    if (onAnalysis !== undefined && typeof onAnalysis !== 'function') {
      throw new Error("SynapticFilterCallback: option 'onAnalysis' must be a function");
    }
    try {
      this.analysisOptions = resolveAnalyzeOptions(analysisOptions);
    } catch (err) {
      throw new Error(`SynapticFilterCallback: ${(err as Error).message}`);
    }
    this.data = data;
    this.every = every;
    this.atStart = atStart;
    this.lastEpoch = lastEpoch;
    this.onAnalysis = onAnalysis;
  }

  /** Every report of the current (or last) fit, oldest first. */
  get reports(): readonly AnalysisReport[] {
    return this.stored;
  }

  /** The newest report, if any. */
  get latest(): AnalysisReport | undefined {
    return this.stored[this.stored.length - 1];
  }

  /**
   * Calls `listener` when an analysis throws, before the error leaves this callback (tfjs then
   * skips every `onTrainEnd`): a callback that changed the model, such as
   * {@link SelectiveRetrainCallback}, undoes it there. Returns the function that unsubscribes.
   */
  onFailure(listener: () => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** Whether this callback's `onTrainBegin` ran in the fit that set `params` (placement checks). */
  hasBegun(params: object | undefined): boolean {
    return params !== undefined && this.trainParams === params;
  }

  /** Invariance of the labels across the epochs analysed so far (docs/method.md §6). */
  invariance(options: InvarianceOptions = {}): InvarianceReport {
    if (this.stored.length === 0) {
      throw new Error('SynapticFilterCallback: no analysis has run yet');
    }
    return invariance(this.stored, options);
  }

  /** The state to save with a checkpoint, for resumed runs. */
  getState(): { reports: AnalysisReport[] } {
    return { reports: JSON.parse(JSON.stringify(this.stored)) };
  }

  /** Restores the state saved by {@link getState}. */
  setState(state: { reports: AnalysisReport[] }): void {
    if (!state || !Array.isArray(state.reports)) {
      throw new Error('SynapticFilterCallback.setState: expected { reports: AnalysisReport[] }');
    }
    this.stored.splice(0, this.stored.length, ...state.reports);
  }

  /** Called by `fit`; a model of another tfjs copy is a `TfjsCopiesError` (not tfjs' own error). */
  override setModel(model: Parameters<tf.Callback['setModel']>[0]): void {
    checkModelTfjs('SynapticFilterCallback', model);
    super.setModel(model);
  }

  override async onTrainBegin(): Promise<void> {
    checkCallbackTfjs('SynapticFilterCallback', this, SynapticFilterCallback, this.model);
    const model = this.requireModel();
    try {
      // Resolved options are not validated again (see resolveAnalyzeOptions).
      checkAnalysisSetup(model, this.data, this.analysisOptions);
    } catch (err) {
      throw new Error(`SynapticFilterCallback: ${(err as Error).message}`);
    }
    this.trainParams = this.params;
    if (this.atStart) await this.analyse(-1);
  }

  override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
    if ((epoch + 1) % this.every !== 0 || epoch > this.lastEpoch) return;
    const report = await this.analyse(epoch);
    if (logs) Object.assign(logs, summaryLogs(report));
  }

  private requireModel(): tf.LayersModel {
    if (!this.model)
      throw new Error('SynapticFilterCallback: used outside model.fit (no model set)');
    return this.model as tf.LayersModel;
  }

  private async analyse(epoch: number): Promise<AnalysisReport> {
    const model = this.requireModel();
    // analyze() restores the weights itself; this snapshot guards against anything else
    // (e.g. an onAnalysis hook) failing half-way.
    const snapshot = model.weights.map((w) => w.read().clone());
    try {
      const report = await analyze(model, this.data, this.analysisOptions);
      report.epoch = epoch;
      this.stored.push(report);
      await this.onAnalysis?.(report);
      return report;
    } catch (err) {
      model.weights.forEach((w, i) =>
        (w as unknown as { val: tf.Variable }).val.assign(snapshot[i]),
      );
      model.stopTraining = true;
      for (const listener of [...this.failureListeners]) listener();
      throw err;
    } finally {
      tf.dispose(snapshot);
    }
  }
}

/** Factory for {@link SynapticFilterCallback}, in the style of tfjs' `earlyStopping()`. */
export function synapticFilter(options: SynapticFilterCallbackOptions): SynapticFilterCallback {
  return new SynapticFilterCallback(options);
}
