/**
 * `tfjs-antifragile/mlflow`: the MLflow REST client and run (explicit ids, batched, spooled),
 * the callback that logs a `fit` to MLflow, and how an analysis report maps to MLflow records.
 * Node only (the spool writes to disk).
 * @packageDocumentation
 */
export * from '../src/mlflow';
export { MlflowCallback, mlflowCallback, modelParams } from './mlflow-callback';
export type { MlflowCallbackOptions, AnalysisSource, RetrainSource } from './mlflow-callback';
export {
  analysisMetrics,
  analysisParams,
  analysisCsv,
  scoreMetricKey,
  parameterKeyName,
  ANALYSIS_CSV_COLUMNS,
} from './mlflow-records';
