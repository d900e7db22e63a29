/**
 * Progress display for training and analysis: `cli-progress` bars on a terminal, plain periodic
 * lines when the output is not a terminal (CI, logs).
 */
export { createProgress, formatSeconds, plainLine } from './progress';
export type { Progress, ProgressTask, ProgressOptions } from './progress';
export { TrainingProgressCallback, analysisProgress } from './training';
