/**
 * The limits a MLflow 3.x tracking server enforces on what it is sent. Read from MLflow's
 * `mlflow/utils/validation.py` (constants `MAX_*`); checked again by this package's tests
 * against the pinned server.
 */
export const MLFLOW_LIMITS = {
  /** Metrics in one `runs/log-batch` request. */
  metricsPerBatch: 1000,
  /** Params in one `runs/log-batch` request. */
  paramsPerBatch: 100,
  /** Tags in one `runs/log-batch` request. */
  tagsPerBatch: 100,
  /** Metrics, params and tags together in one `runs/log-batch` request. */
  entitiesPerBatch: 1000,
  /** Size of one `runs/log-batch` request body. */
  batchRequestSize: 1_000_000,
  /** Characters of a metric, param or tag key. */
  keyLength: 250,
  /** Characters of a param value (the server truncates longer values). */
  paramValueLength: 6000,
  /** Characters of a run tag value (the server truncates longer values). */
  tagValueLength: 8000,
  /** Characters of an experiment name. */
  experimentNameLength: 500,
  /** Characters of a dataset name. */
  datasetNameLength: 500,
  /** Characters of a dataset digest. */
  datasetDigestLength: 36,
  /** Characters of a dataset source. */
  datasetSourceLength: 65535,
  /** Characters of a dataset schema. */
  datasetSchemaLength: 1048575,
  /** Characters of a dataset profile. */
  datasetProfileLength: 16777215,
  /** Characters of a dataset input tag key. */
  inputTagKeyLength: 255,
  /** Characters of a dataset input tag value. */
  inputTagValueLength: 500,
} as const;

/**
 * The size this client packs `log-batch` bodies to: below {@link MLFLOW_LIMITS.batchRequestSize}
 * with room for the envelope, since the server counts characters and we count UTF-8 bytes.
 */
export const BATCH_BODY_BUDGET = 900_000;
