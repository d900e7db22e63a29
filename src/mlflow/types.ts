/**
 * MLflow's tracking entities, as this client returns them (camelCase; the REST API's JSON is
 * snake_case).
 */

/** Run states (`mlflow.entities.RunStatus`). */
export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export const RUN_STATUSES: readonly RunStatus[] = [
  'RUNNING',
  'SCHEDULED',
  'FINISHED',
  'FAILED',
  'KILLED',
];

export interface Experiment {
  experimentId: string;
  name: string;
  artifactLocation: string;
  lifecycleStage: string;
  tags: Record<string, string>;
}

/** One metric value. `timestamp` is in ms since the epoch. */
export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface Param {
  key: string;
  value: string;
}

export interface RunTag {
  key: string;
  value: string;
}

export interface RunInfo {
  runId: string;
  experimentId: string;
  runName: string;
  userId: string;
  status: RunStatus;
  startTime: number;
  endTime?: number;
  artifactUri: string;
  lifecycleStage: string;
}

/** A dataset a run used (`log-inputs`). */
export interface Dataset {
  /** Name shown in the UI, ≤ 500 characters. */
  name: string;
  /** Content hash, ≤ 36 characters. */
  digest: string;
  /** Kind of source, e.g. `local`, `http`, `code`. */
  sourceType: string;
  /** Where the data is, as a JSON string (e.g. `{"uri":"..."}`), ≤ 65 535 characters. */
  source: string;
  /** Optional schema, JSON text. */
  schema?: string;
  /** Optional profile (e.g. `{"num_rows": 1000}`), JSON text. */
  profile?: string;
}

/** A dataset with the tags of its use, e.g. `mlflow.data.context` = `train`. */
export interface DatasetInput {
  dataset: Dataset;
  tags?: Record<string, string>;
}

export interface Run {
  info: RunInfo;
  data: {
    /** The latest value of each metric. */
    metrics: Record<string, Metric>;
    params: Record<string, string>;
    tags: Record<string, string>;
  };
  inputs: DatasetInput[];
}

/** An entry of an artifact listing. */
export interface ArtifactFile {
  path: string;
  isDir: boolean;
  fileSize?: number;
}
