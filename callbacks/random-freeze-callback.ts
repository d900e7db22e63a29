import * as tf from '@tensorflow/tfjs';
import { mixSeeds, seededSample } from '../src/util/random';
import { restoreOnFailure } from './restore-on-failure';
import { checkCallbackTfjs, checkModelTfjs } from '../src/util/tfjs-copies';

/** One refresh of a {@link RandomFreezeCallback}: at the end of `epoch`, freeze `count` layers. */
export interface RandomFreezeStep {
  /** Epoch whose end triggers the refresh (0-based); −1: at the start of training. */
  epoch: number;
  /** How many layers to freeze from then on. */
  count: number;
}

/** Options of {@link RandomFreezeCallback}. */
export interface RandomFreezeOptions {
  /** The layers to choose from (by name): the analysed layers of the selective arm. Required. */
  layers: string[];
  /**
   * When to refresh and how many layers to freeze: the selective arm's frozen-layer counts at
   * each of its refreshes. Required.
   */
  schedule: RandomFreezeStep[];
  /** Seed of the choice; the same seed and epoch give the same layers. Default 0. */
  seed?: number;
  /**
   * The epoch `fit` starts at (its `initialEpoch`, for resumed training): training begins with
   * the set of the newest refresh before it. Default 0 (the refresh at epoch −1).
   */
  initialEpoch?: number;
}

/**
 * The control arm selective retraining lacks: at each refresh it freezes as many layers as the
 * selective arm froze at that refresh, chosen uniformly at random among the same candidate layers
 * (seeded). If selective retraining does no better than this, the analysis adds nothing over
 * freezing as such. Freezing is by `trainable` flag, as in `SelectiveRetrainCallback` (no
 * recompile, optimizer state kept); flags it changed are restored at `onTrainEnd` (tfjs skips
 * that hook when `fit` throws: wrap the fit in {@link RandomFreezeCallback.track}). A refresh that
 * would freeze every trainable weight keeps the previous set. Adds `frozen_layers` to the logs.
 */
export class RandomFreezeCallback extends tf.Callback {
  readonly layers: readonly string[];
  readonly schedule: readonly RandomFreezeStep[];
  readonly seed: number;
  readonly initialEpoch: number;
  private frozenNow: string[] = [];
  private touched = new Set<tf.LayerVariable>();
  /** Weights trainable when training began (ours to toggle). */
  private toggleable = new Set<tf.LayerVariable>();

  constructor(options: RandomFreezeOptions) {
    super();
    const { layers, schedule, seed = 0, initialEpoch = 0 } = options ?? ({} as RandomFreezeOptions);
    if (
      !Array.isArray(layers) ||
      layers.length === 0 ||
      !layers.every((l) => typeof l === 'string')
    ) {
      throw new Error(
        `RandomFreezeCallback: option 'layers' must be a non-empty list of layer names; got ${JSON.stringify(layers)}`,
      );
    }
    const stepOk = (s: RandomFreezeStep) =>
      Number.isInteger(s?.epoch) &&
      s.epoch >= -1 &&
      Number.isInteger(s?.count) &&
      s.count >= 0 &&
      s.count <= layers.length;
    if (!Array.isArray(schedule) || !schedule.every(stepOk)) {
      throw new Error(
        `RandomFreezeCallback: option 'schedule' must be a list of { epoch ≥ −1, count in 0…${layers.length} }; got ${JSON.stringify(schedule)}`,
      );
    }
    if (!Number.isInteger(seed)) {
      throw new Error(
        `RandomFreezeCallback: option 'seed' must be an integer; got ${JSON.stringify(seed)}`,
      );
    }
    this.layers = [...layers];
    this.schedule = schedule.map((s) => ({ ...s }));
    if (!Number.isInteger(initialEpoch) || initialEpoch < 0) {
      throw new Error(
        `RandomFreezeCallback: option 'initialEpoch' must be an integer ≥ 0; got ${JSON.stringify(initialEpoch)}`,
      );
    }
    this.seed = seed;
    this.initialEpoch = initialEpoch;
  }

  /** Layers frozen now. */
  get frozenLayers(): string[] {
    return [...this.frozenNow];
  }

  /** The layers chosen at the refresh after `epoch` (−1: the start), for `count` layers. */
  choose(epoch: number, count: number): string[] {
    return seededSample(this.layers.length, count, mixSeeds(this.seed, epoch + 1)).map(
      (i) => this.layers[i],
    );
  }

  /** Called by `fit`; a model of another tfjs copy is a `TfjsCopiesError` (not tfjs' own error). */
  override setModel(model: Parameters<tf.Callback['setModel']>[0]): void {
    checkModelTfjs('RandomFreezeCallback', model);
    super.setModel(model);
  }

  override async onTrainBegin(): Promise<void> {
    checkCallbackTfjs('RandomFreezeCallback', this, RandomFreezeCallback, this.model);
    const model = this.model as tf.LayersModel;
    const names = new Set(model.layers.map((l) => l.name));
    const missing = this.layers.filter((l) => !names.has(l));
    if (missing.length) {
      throw new Error(
        `RandomFreezeCallback: the model has no layer '${missing[0]}' (option 'layers')`,
      );
    }
    this.frozenNow = [];
    this.touched.clear();
    this.toggleable = new Set(model.trainableWeights);
    const before = this.schedule.filter((s) => s.epoch < this.initialEpoch);
    const newest = before.reduce((a, b) => (b.epoch > a ? b.epoch : a), -2);
    if (newest >= -1) this.apply(newest);
  }

  override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
    this.apply(epoch);
    if (logs) logs.frozen_layers = this.frozenNow.length;
  }

  override async onTrainEnd(): Promise<void> {
    this.restore();
  }

  /**
   * Awaits a training promise (`model.fit(...)`); if it rejects (tfjs then skips `onTrainEnd`),
   * restores the trainable flags and rethrows: `await control.track(model.fit(...))`.
   */
  track<T>(training: Promise<T>): Promise<T> {
    return restoreOnFailure(training, () => this.restore());
  }

  /** Turns every flag this callback changed back on. */
  restore(): void {
    for (const v of this.touched) v.trainable = true;
    this.touched.clear();
    this.frozenNow = [];
  }

  private apply(epoch: number): void {
    const step = this.schedule.find((s) => s.epoch === epoch);
    if (!step) return;
    const model = this.model as tf.LayersModel;
    const chosen = this.choose(epoch, step.count);
    const wanted = new Set(
      chosen.flatMap((name) => model.getLayer(name).weights.filter((w) => this.toggleable.has(w))),
    );
    // Freezing every trainable weight would make the next batch throw: keep the current set.
    if ([...this.toggleable].every((w) => wanted.has(w))) return;
    for (const v of this.touched) if (!wanted.has(v)) v.trainable = true;
    for (const v of wanted) v.trainable = false;
    this.touched = wanted;
    this.frozenNow = chosen;
  }
}

/** Factory for {@link RandomFreezeCallback}. */
export function randomFreeze(options: RandomFreezeOptions): RandomFreezeCallback {
  return new RandomFreezeCallback(options);
}
