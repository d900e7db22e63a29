export { SynapticFilterCallback, synapticFilter, summaryLogs } from './synaptic-filter-callback';
export type { SynapticFilterCallbackOptions, AnalysisLogs } from './synaptic-filter-callback';
export { SelectiveRetrainCallback, selectiveRetrain } from './selective-retrain-callback';
export type {
  SelectiveRetrainOptions,
  FreezeRecord,
  FragileRule,
} from './selective-retrain-callback';
export { resolveLogs } from './logs';
export type { NumericLogs } from './logs';
export { MlflowCallback, mlflowCallback, modelParams } from './mlflow-callback';
export type { MlflowCallbackOptions, AnalysisSource, RetrainSource } from './mlflow-callback';
