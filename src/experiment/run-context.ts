import type { AnalysisReport } from '../analysis/types';
import type { SelectiveRetrainState } from '../../callbacks/selective-retrain-callback';
import type { RecipeData } from './data';
import type { Progress } from './progress';
import {
  RUN_FILES,
  type FrozenRecord,
  type MetricRow,
  type RunFolder,
  type RunManifest,
} from './run-folder';
import type { Recipe } from './schema';
import type { RunTracker } from './tracking';

/** How a caller follows a run and stops it, at epoch ends. */
export interface EpochHooks {
  /** Stops the run cleanly at the next epoch end when aborted (the CLI wires Ctrl-C to it). */
  signal?: AbortSignal;
  /** Called after each epoch is recorded and checkpointed. */
  onEpochEnd?: (phase: string, epoch: number) => void;
}

/**
 * What a checkpoint's `state.json` holds: where it is, and the state of the phase's callbacks
 * (their `getState()`), so that a resumed phase goes on exactly as an uninterrupted one.
 */
export interface CheckpointState {
  phase: string;
  epoch: number;
  /**
   * The analysis' state (`SynapticFilterCallback.getState().reports`): the phase's reports so
   * far, start report included, under stable weight names.
   */
  reports: AnalysisReport[];
  /** Selective phases: `SelectiveRetrainCallback.getState()` (frozen weights and history). */
  selective?: SelectiveRetrainState;
}

/** The numeric fields of a metric row, as logged to the tracker. */
export function numericRow(row: MetricRow): Record<string, number> {
  const numeric: Record<string, number> = {};
  for (const [k, v] of Object.entries(row)) if (typeof v === 'number') numeric[k] = v;
  return numeric;
}

/** Shared state of one invocation of the runner. */
export class RunContext {
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
    readonly hooks: EpochHooks,
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

  /** Whether the run should stop at this epoch end (an abort, now or earlier). */
  shouldStop(): boolean {
    if (this.hooks.signal?.aborted) this.stopRequested = true;
    return this.stopRequested;
  }
}
