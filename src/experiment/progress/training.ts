import * as tf from '@tensorflow/tfjs';
import type { AnalysisProgress } from '../../analysis/options';
import { resolveLogs, type NumericLogs } from '../../../callbacks/logs';
import type { Progress, ProgressTask } from './progress';

const fmt = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : undefined);

/**
 * Shows the batches of each epoch of a `fit` / `fitDataset` as a progress task
 * (`<label> epoch n/N`), with the running loss as its status. Place it last in the callbacks,
 * and {@link batchesEnd} first: the epoch's line then ends when its batches do, timed apart
 * from what later callbacks do at the epoch's end (an analysis prints its own line after it),
 * and {@link finishEpoch} prints the epoch's results on a line of their own.
 */
export class TrainingProgressCallback extends tf.Callback {
  private current?: ProgressTask;
  private currentLabel = '';
  /** Ends the epoch's line with its training loss and accuracy; place it first. */
  readonly batchesEnd: tf.Callback;

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
    const end = (logs: NumericLogs) => this.endBatches(logs);
    this.batchesEnd = new (class extends tf.Callback {
      override async onEpochEnd(_epoch: number, logs?: tf.Logs): Promise<void> {
        end(await resolveLogs(logs));
      }
    })();
  }

  override async onEpochBegin(epoch: number): Promise<void> {
    this.current?.finish();
    this.currentLabel = `${this.label} epoch ${epoch + 1}/${this.epochs}`;
    this.current = this.progress.task(this.currentLabel, this.batches, 'batches');
  }

  private endBatches(logs: NumericLogs): void {
    const loss = fmt(logs.loss);
    const acc = fmt(logs.acc ?? logs.accuracy);
    const parts = [loss && `loss ${loss}`, acc && `acc ${acc}`].filter(Boolean);
    this.current?.finish(parts.length ? parts.join(', ') : undefined);
    this.current = undefined;
  }

  override async onBatchEnd(batch: number, logs?: tf.Logs): Promise<void> {
    const loss = logs?.loss as unknown;
    let value: number | undefined;
    if (typeof loss === 'number') value = loss;
    else if (loss instanceof tf.Tensor) value = (await loss.data())[0];
    this.current?.update(batch + 1, value === undefined ? undefined : `loss ${value.toFixed(4)}`);
  }

  /**
   * The epoch's results (called by the runner once the epoch is recorded): ends the epoch's task
   * with `summary`, or, when {@link batchesEnd} ended it, prints `<label> epoch n/N results: …`.
   */
  finishEpoch(summary?: string): void {
    if (this.current) this.current.finish(summary);
    else if (summary) this.progress.log(`${this.currentLabel} results: ${summary}`);
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
