import * as tf from '@tensorflow/tfjs';
import type { AnalysisProgress } from '../../analysis/options';
import type { Progress, ProgressTask } from './progress';

/**
 * Shows the batches of each epoch of a `fit` / `fitDataset` as a progress task
 * (`<label> epoch n/N`), with the running loss as its status. Place it last in the callbacks.
 */
export class TrainingProgressCallback extends tf.Callback {
  private current?: ProgressTask;

  constructor(
    private readonly progress: Progress,
    /** Prefix of each task label, e.g. the phase. */
    private readonly label: string,
    /** Batches per epoch. */
    private readonly batches: number,
    /** Epochs of the whole fit (for `n/N`). */
    private readonly epochs: number,
  ) {
    super();
  }

  override async onEpochBegin(epoch: number): Promise<void> {
    this.current?.finish();
    this.current = this.progress.task(
      `${this.label} epoch ${epoch + 1}/${this.epochs}`,
      this.batches,
      'batches',
    );
  }

  override async onBatchEnd(batch: number, logs?: tf.Logs): Promise<void> {
    const loss = logs?.loss as unknown;
    let value: number | undefined;
    if (typeof loss === 'number') value = loss;
    else if (loss instanceof tf.Tensor) value = (await loss.data())[0];
    this.current?.update(batch + 1, value === undefined ? undefined : `loss ${value.toFixed(4)}`);
  }

  /** Ends the epoch's task with `summary` (called by the runner once the epoch is recorded). */
  finishEpoch(summary?: string): void {
    this.current?.finish(summary);
    this.current = undefined;
  }

  override async onTrainEnd(): Promise<void> {
    this.finishEpoch();
  }
}

/**
 * An `onProgress` function for `analyze` that shows each analysis as a task of its
 * (parameter, filter, step) cells, labelled `label()` (read when an analysis starts).
 */
export function analysisProgress(
  progress: Progress,
  label: () => string,
): { onProgress: (p: AnalysisProgress) => void; finish: (summary?: string) => void } {
  let task: ProgressTask | undefined;
  return {
    onProgress: (p) => {
      task ??= progress.task(label(), p.total, 'steps');
      task.update(p.done, p.parameter);
      if (p.done >= p.total) {
        task.finish();
        task = undefined;
      }
    },
    finish: (summary) => {
      task?.finish(summary);
      task = undefined;
    },
  };
}
