/**
 * The callbacks that run inside `model.fit`: analysis at epoch ends and selective retraining.
 * MLflow's callback, which spools to disk, is in `./mlflow` (the package's `/mlflow` entry).
 */
export { SynapticFilterCallback, synapticFilter, summaryLogs } from './synaptic-filter-callback';
export type { SynapticFilterCallbackOptions, AnalysisLogs } from './synaptic-filter-callback';
export { SelectiveRetrainCallback, selectiveRetrain } from './selective-retrain-callback';
export type {
  SelectiveRetrainOptions,
  FreezeRecord,
  FragileRule,
  SelectiveRetrainState,
} from './selective-retrain-callback';
export { resolveLogs } from './logs';
export type { NumericLogs } from './logs';
export { RandomFreezeCallback, randomFreeze } from './random-freeze-callback';
export type { RandomFreezeOptions, RandomFreezeStep } from './random-freeze-callback';
