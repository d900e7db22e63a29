/**
 * MLflow tracking: a REST client with explicit ids ({@link MlflowClient}), a run with a
 * buffered, spooled outbox ({@link MlflowRun}), and the pieces they are built of.
 * Knows nothing of tfjs or callbacks.
 */
export {
  MlflowClient,
  proxyRoot,
  guessContentType,
  OVERSIZED_TAG_PREFIX,
  EXPERIMENT_KIND_TAG,
  EXPERIMENT_KIND,
  NOTE_TAG,
} from './client';
export type {
  MlflowClientOptions,
  CallOptions,
  CreateRunOptions,
  SearchRunsOptions,
} from './client';
export { MlflowRun, LOCAL_ID_TAG } from './run';
export { syncSpools, findSpools } from './sync';
export type { SyncOptions, SpoolSync } from './sync';
export type { MlflowRunOptions, FlushOptions, FlushResult } from './run';
export { resolveMlflowConfig, redactUri, MLFLOW_ENV, DEFAULT_EXPERIMENT_NAME } from './config';
export type { MlflowConnectionOptions, MlflowConfig, MlflowAuth } from './config';
export { DEFAULT_RETRY_POLICY, RETRY_STATUSES } from './http';
export type { RetryPolicy } from './http';
export { normalizeBatch, splitBatch } from './batch';
export type { BatchInput, MetricInput, ParamValue, WireBatch, WireMetric } from './batch';
export { sanitizeKey, keyProblem, KEY_RULE } from './keys';
export { MLFLOW_LIMITS } from './limits';
export { Spool, SPOOL_FILE } from './spool';
export type { RunOperation, SpoolHeader } from './spool';
export {
  MlflowError,
  MlflowConfigError,
  MlflowValidationError,
  MlflowRequestError,
  MlflowUnavailableError,
} from './errors';
export type {
  RunStatus,
  Experiment,
  Metric,
  Param,
  RunTag,
  RunInfo,
  Run,
  Dataset,
  DatasetInput,
  ArtifactFile,
} from './types';
