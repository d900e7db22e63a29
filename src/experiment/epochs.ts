import type { AnalysisReport } from '../analysis/types';

/**
 * The one epoch convention of a run's records (`metrics.csv`/`.json`, `analysis/`, `labels.*`,
 * `frozen.json`, `checkpoints/`, `run.json`, MLflow steps, the report and the console): an epoch
 * is numbered by how many epochs of its phase have finished. Epoch 1 is the record after the
 * phase's first epoch (the console's "epoch 1/3"), epoch 0 the phase's start, before its first
 * epoch (a start analysis, the analysis a branch inherits), the checkpoint `epoch-003` the state
 * after three epochs. tfjs' callbacks (like Keras' logs) number epochs from 0; the runner
 * converts once, with {@link recordEpoch}. The callbacks' own state in a checkpoint's
 * `state.json` keeps tfjs' numbering (it is theirs to read back, not a record).
 */
export const EPOCH_CONVENTION =
  'epochs finished in the phase: 1 = after the first epoch, 0 = the phase start';

/** The record epoch of tfjs' 0-based epoch index (−1, a start analysis, gives 0). */
export function recordEpoch(index: number): number {
  return index + 1;
}

/** A report of an analysis callback (tfjs numbering), numbered as the run's records are. */
export function recordReport(report: AnalysisReport): AnalysisReport {
  return { ...report, epoch: recordEpoch(report.epoch ?? -1) };
}
