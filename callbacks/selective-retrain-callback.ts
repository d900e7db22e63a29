import * as tf from '@tensorflow/tfjs';
import type { AnalysisReport, FilterId, ScoreId } from '../src/analysis/types';
import { FILTER_IDS, SCORE_IDS } from '../src/analysis/types';
import { characterise } from '../src/analysis/scores';
import { restoreOnFailure } from './restore-on-failure';
import { SynapticFilterCallback } from './synaptic-filter-callback';
import { checkCallbackTfjs, checkModelTfjs } from '../src/util/tfjs-copies';

/** Which filters must call a parameter fragile for it to be frozen. */
export type FragileRule = 'any' | 'all' | FilterId[];

/** Options of {@link SelectiveRetrainCallback}. */
export interface SelectiveRetrainOptions {
  /** The analysis whose labels decide; it must come before this callback in the list. Required. */
  analysis: SynapticFilterCallback;
  /** The score whose labels are used; default `'adversarial'` (docs/method.md §7). */
  score?: ScoreId;
  /**
   * `'any'` (default): fragile if any analysed filter labels it fragile; `'all'`: only if every
   * filter does; a list of filter ids: if any of those does.
   */
  filters?: FragileRule;
  /** First epoch (0-based) whose analysis may freeze layers; default 0. */
  startEpoch?: number;
  /**
   * `'layer'` (default): freeze the whole layer (kernel and bias) owning a fragile parameter;
   * `'parameter'`: freeze only the fragile weight tensor.
   */
  granularity?: 'layer' | 'parameter';
  /**
   * τ that decides freezing: a parameter is fragile when its score is below −τ. Default: the
   * labels the analysis gave with its own tolerance. Set it to try other thresholds on the same
   * analyses (e.g. a sensitivity study) without changing the reports.
   */
  tolerance?: number;
}

/** One refresh of the frozen set. */
export interface FreezeRecord {
  /** The epoch whose analysis decided. */
  epoch: number;
  /** Layers frozen from the next batch on (with `granularity: 'parameter'`, layers owning a frozen weight). */
  frozen: string[];
  /** Weights frozen (every weight of a frozen layer, or the single fragile tensors). */
  frozenParameters: string[];
  /** Set when the refresh was skipped, with the reason. */
  skipped?: string;
}

/**
 * Selective retraining (docs/method.md §7): after each analysis, freezes the layers (or weights) whose
 * parameter is labelled fragile and keeps training the robust and antifragile ones, with the
 * same optimiser and data. Labels are refreshed at each new analysis, so a layer may be
 * unfrozen again.
 *
 * How freezing works in tfjs: `compile()` fixes the list of trained variables; at each batch
 * `fit` hands the optimiser that whole list, in that order, with a null gradient for every
 * variable whose `trainable` flag is off, and optimisers skip null gradients. Turning the flag
 * off therefore stops every update from the next batch on (Adam's moments and momentum's
 * velocity of that variable stay as they were), and turning it back on resumes training. We never
 * recompile: recompiling with the same optimiser would re-pair its slot variables, which it keeps
 * by position, with other variables. Layers the
 * user made non-trainable are never touched. BatchNorm layers are not analysed and so never
 * frozen: their γ, β and moving statistics keep training. Freezing never leaves the model with no
 * trainable weight (tfjs would throw at the next batch): such a refresh is skipped and recorded.
 * At the end of training every flag this callback changed is restored, also when the fit throws
 * from this callback or its analysis (tfjs then skips `onTrainEnd`); for errors from elsewhere,
 * wrap the fit: `await retrain.track(model.fit(...))`.
 *
 * Events: `onTrainBegin` checks the setup (the analysis must be placed before this callback),
 * then freezes the set restored by {@link setState}, or else the set decided by the analysis'
 * report of epoch −1 if there is one (`atStart`, or a start report handed over with the
 * analysis' `setState`); `onEpochEnd` refreshes the frozen set when the analysis produced a report for this epoch and
 * adds `frozen_layers` (count) to the logs; `onTrainEnd` restores the flags.
 */
export class SelectiveRetrainCallback extends tf.Callback {
  readonly analysis: SynapticFilterCallback;
  readonly score: ScoreId;
  readonly filters: FragileRule;
  readonly startEpoch: number;
  readonly granularity: 'layer' | 'parameter';
  readonly tolerance?: number;
  private frozenNow: string[] = [];
  private frozenParamsNow: string[] = [];
  private frozenOriginalNow: string[] = [];
  private records: FreezeRecord[] = [];
  /** Variables whose trainable flag we turned off, with the layer they belong to. */
  private touched = new Map<tf.LayerVariable, string>();
  /** Variables trainable when training began (ours to toggle). */
  private toggleable = new Set<tf.LayerVariable>();
  /** Unsubscribes from the analysis' failures (set during a fit). */
  private unsubscribe?: () => void;
  /** State handed to {@link setState}, applied at the next `onTrainBegin`. */
  private restored?: SelectiveRetrainState;

  constructor(options: SelectiveRetrainOptions) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new Error('SelectiveRetrainCallback: options must be an object with { analysis }');
    }
    const {
      analysis,
      score = 'adversarial',
      filters = 'any',
      startEpoch = 0,
      granularity = 'layer',
      tolerance,
    } = options;
    const allowedKeys = ['analysis', 'score', 'filters', 'startEpoch', 'granularity', 'tolerance'];
    const unknown = Object.keys(options).filter((k) => !allowedKeys.includes(k));
    if (unknown.length) {
      throw new Error(
        `SelectiveRetrainCallback: unknown option '${unknown[0]}'; allowed: ${allowedKeys.join(', ')}`,
      );
    }
    if (!(analysis instanceof SynapticFilterCallback)) {
      throw new Error(
        "SelectiveRetrainCallback: option 'analysis' must be the SynapticFilterCallback whose labels decide " +
          `(placed before this callback); got ${analysis === undefined ? 'undefined' : typeof analysis}`,
      );
    }
    if (!SCORE_IDS.includes(score)) {
      throw new Error(
        `SelectiveRetrainCallback: option 'score' must be one of ${SCORE_IDS.join(', ')}; got '${String(score)}'`,
      );
    }
    const filterOk =
      filters === 'any' ||
      filters === 'all' ||
      (Array.isArray(filters) &&
        filters.length > 0 &&
        filters.every((f) => FILTER_IDS.includes(f)));
    if (!filterOk) {
      throw new Error(
        `SelectiveRetrainCallback: option 'filters' must be 'any', 'all' or a non-empty list of ${FILTER_IDS.join(', ')}; ` +
          `got ${JSON.stringify(filters)}`,
      );
    }
    if (Array.isArray(filters)) {
      const missing = filters.filter((f) => !analysis.analysisOptions.filters.includes(f));
      if (missing.length) {
        throw new Error(
          `SelectiveRetrainCallback: filter '${missing[0]}' is not swept by the analysis`,
        );
      }
    }
    if (!Number.isInteger(startEpoch) || startEpoch < 0) {
      throw new Error(
        `SelectiveRetrainCallback: option 'startEpoch' must be an integer ≥ 0; got ${startEpoch}`,
      );
    }
    if (granularity !== 'layer' && granularity !== 'parameter') {
      throw new Error(
        `SelectiveRetrainCallback: option 'granularity' must be 'layer' or 'parameter'; got '${String(granularity)}'`,
      );
    }
    this.analysis = analysis;
    this.score = score;
    this.filters = filters;
    this.startEpoch = startEpoch;
    if (tolerance !== undefined && !(typeof tolerance === 'number' && tolerance >= 0)) {
      throw new Error(
        `SelectiveRetrainCallback: option 'tolerance' must be a number ≥ 0; got ${String(tolerance)}`,
      );
    }
    this.granularity = granularity;
    this.tolerance = tolerance;
  }

  /** Layers frozen now. */
  get frozenLayers(): string[] {
    return [...this.frozenNow];
  }

  /** Weights frozen now. */
  get frozenParameters(): string[] {
    return [...this.frozenParamsNow];
  }

  /** Every refresh of the frozen set, oldest first. */
  get history(): ReadonlyArray<FreezeRecord> {
    return this.records;
  }

  /**
   * The state to save with a checkpoint, for resumed runs: the weights frozen now (by their
   * `originalName`, which does not depend on how many models the process built) and the history.
   */
  getState(): SelectiveRetrainState {
    return {
      frozenParameters: [...this.frozenOriginalNow],
      history: JSON.parse(JSON.stringify(this.records)),
    };
  }

  /**
   * Restores the state saved by {@link getState}: at the next `onTrainBegin` the same weights are
   * frozen again (until the next analysis refreshes the set) and the history carries on. The
   * restored set stands for every report up to the checkpoint, so an analysis report of epoch −1
   * does not refresh it again at that `onTrainBegin`.
   */
  setState(state: SelectiveRetrainState): void {
    if (!state || !Array.isArray(state.frozenParameters) || !Array.isArray(state.history)) {
      throw new Error(
        'SelectiveRetrainCallback.setState: expected { frozenParameters: string[], history: FreezeRecord[] }',
      );
    }
    this.restored = JSON.parse(JSON.stringify(state)) as SelectiveRetrainState;
  }

  /** Whether a parameter's labels in `report` make it fragile under this callback's rule. */
  isFragile(report: AnalysisReport, parameter: string): boolean {
    const p = report.parameters.find((q) => q.name === parameter);
    if (!p) return false;
    const considered = (
      this.filters === 'any' || this.filters === 'all' ? FILTER_IDS : this.filters
    ).filter((f) => p.filters[f]);
    const fragile = considered.map((f) => {
      const result = p.filters[f];
      if (!result) return false;
      if (this.tolerance === undefined) return result.labels[this.score] === 'fragile';
      return characterise(result.scores[this.score], this.tolerance) === 'fragile';
    });
    if (fragile.length === 0) return false;
    return this.filters === 'all' ? fragile.every(Boolean) : fragile.some(Boolean);
  }

  /** Called by `fit`; a model of another tfjs copy is a `TfjsCopiesError` (not tfjs' own error). */
  override setModel(model: Parameters<tf.Callback['setModel']>[0]): void {
    checkModelTfjs('SelectiveRetrainCallback', model);
    super.setModel(model);
  }

  override async onTrainBegin(): Promise<void> {
    checkCallbackTfjs('SelectiveRetrainCallback', this, SelectiveRetrainCallback, this.model);
    if (!this.analysis.hasBegun(this.params)) {
      throw new Error(
        'SelectiveRetrainCallback: its SynapticFilterCallback must be in the same callbacks list, ' +
          'placed before it (e.g. callbacks: [analysis, retrain])',
      );
    }
    const model = this.model as tf.LayersModel;
    this.frozenNow = [];
    this.frozenParamsNow = [];
    this.frozenOriginalNow = [];
    this.records = [];
    this.touched.clear();
    this.toggleable = new Set(model.trainableWeights.filter((w) => w.trainable));
    if (!model.optimizer) {
      throw new Error('SelectiveRetrainCallback: the model must be compiled with an optimizer');
    }
    // An analysis error ends the fit without onTrainEnd: put the flags back before it leaves.
    this.unsubscribe?.();
    this.unsubscribe = this.analysis.onFailure(() => this.restore());
    await this.restoring(async () => this.freezeAtStart(model));
  }

  /** Freezes the restored set, or the one the start report (epoch −1) decides. */
  private freezeAtStart(model: tf.LayersModel): void {
    if (this.restored) {
      // The restored set already reflects every report up to the checkpoint, the start one too.
      this.applyRestored(model, this.restored);
      this.restored = undefined;
      return;
    }
    const report = this.analysis.latest;
    if (report && report.epoch === -1 && this.startEpoch === 0) this.refresh(report, -1);
  }

  override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
    await this.restoring(async () => {
      const report = this.analysis.latest;
      if (report && report.epoch === epoch && epoch >= this.startEpoch) {
        this.refresh(report, epoch);
      }
      if (logs) logs.frozen_layers = this.frozenNow.length;
    });
  }

  override async onTrainEnd(): Promise<void> {
    this.restore();
  }

  /**
   * Makes every weight this callback froze trainable again (as `onTrainEnd` does). tfjs skips
   * `onTrainEnd` when `fit` throws; this callback restores the flags itself when the error comes
   * from it or from its analysis, and {@link track} covers any other error.
   */
  restore(): void {
    for (const v of this.touched.keys()) v.trainable = true;
    this.touched.clear();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /**
   * Awaits a training promise (`model.fit(...)`); if it rejects, restores the trainable flags
   * (see {@link restore}) and rethrows: `await retrain.track(model.fit(...))`.
   */
  track<T>(training: Promise<T>): Promise<T> {
    return restoreOnFailure(training, () => this.restore());
  }

  /** Runs one of this callback's hooks; if it throws, restores the flags before rethrowing. */
  private restoring(hook: () => Promise<void>): Promise<void> {
    return restoreOnFailure(hook(), () => this.restore());
  }

  private refresh(report: AnalysisReport, epoch: number): void {
    const model = this.model as tf.LayersModel;
    const fragileNames = report.parameters
      .map((p) => p.name)
      .filter((name) => this.isFragile(report, name));
    const wanted = new Map<tf.LayerVariable, string>();
    for (const layer of model.layers) {
      for (const w of layer.weights) {
        if (!fragileNames.includes(w.name)) continue;
        const targets = this.granularity === 'layer' ? layer.weights : [w];
        for (const t of targets) if (this.toggleable.has(t)) wanted.set(t, layer.name);
      }
    }
    const stillTrainable = [...this.toggleable].filter((v) => !wanted.has(v));
    if (wanted.size > 0 && stillTrainable.length === 0) {
      this.records.push({
        epoch,
        frozen: this.frozenNow,
        frozenParameters: this.frozenParamsNow,
        skipped: 'every trainable weight is fragile; freezing all would leave nothing to train',
      });
      return;
    }
    this.freeze(wanted);
    this.records.push({
      epoch,
      frozen: this.frozenLayers,
      frozenParameters: this.frozenParameters,
    });
  }

  /** Freezes the weights a {@link getState} named and carries its history on. */
  private applyRestored(model: tf.LayersModel, state: SelectiveRetrainState): void {
    const names = new Set(state.frozenParameters);
    const wanted = new Map<tf.LayerVariable, string>();
    for (const layer of model.layers) {
      for (const w of layer.weights) {
        if (names.has(w.originalName) && this.toggleable.has(w)) wanted.set(w, layer.name);
      }
    }
    this.freeze(wanted);
    this.records = state.history;
  }

  /** Makes `wanted` (weight → its layer's name) the frozen set. */
  private freeze(wanted: Map<tf.LayerVariable, string>): void {
    const model = this.model as tf.LayersModel;
    for (const v of this.touched.keys()) if (!wanted.has(v)) v.trainable = true;
    for (const v of wanted.keys()) v.trainable = false;
    this.touched = wanted;
    this.frozenNow = [...new Set(wanted.values())];
    const frozen = model.weights.filter((w) => wanted.has(w));
    this.frozenParamsNow = frozen.map((w) => w.name);
    this.frozenOriginalNow = frozen.map((w) => w.originalName);
  }
}

/** What {@link SelectiveRetrainCallback.getState} returns. */
export interface SelectiveRetrainState {
  /** `originalName`s of the weights frozen when the state was taken. */
  frozenParameters: string[];
  history: FreezeRecord[];
}

/** Factory for {@link SelectiveRetrainCallback}. */
export function selectiveRetrain(options: SelectiveRetrainOptions): SelectiveRetrainCallback {
  return new SelectiveRetrainCallback(options);
}
