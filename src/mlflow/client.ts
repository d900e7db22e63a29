/**
 * A thin client of MLflow's REST API 2.0 with explicit ids: every call names the experiment or
 * run it acts on, nothing is implicit. Runs, experiments, batched logging within the server's
 * limits, dataset inputs, and artifacts through the tracking server's artifact proxy.
 */
import { normalizeBatch, splitBatch, type BatchInput, type WireBatch } from './batch';
import { resolveMlflowConfig, type MlflowConfig, type MlflowConnectionOptions } from './config';
import { MlflowError, MlflowRequestError, MlflowValidationError } from './errors';
import { DEFAULT_RETRY_POLICY, HttpTransport, type RetryPolicy } from './http';
import { artifactPathProblem, sanitizeKey } from './keys';
import { MLFLOW_LIMITS } from './limits';
import {
  RUN_STATUSES,
  type ArtifactFile,
  type DatasetInput,
  type Experiment,
  type Metric,
  type Run,
  type RunInfo,
  type RunStatus,
} from './types';
import { decodeMetricValue } from './values';

/** Options of {@link MlflowClient}. */
export interface MlflowClientOptions extends MlflowConnectionOptions {
  /** Retry policy of every request; default {@link DEFAULT_RETRY_POLICY}. */
  retry?: Partial<RetryPolicy>;
}

/** Per-call options. */
export interface CallOptions {
  /** Overrides the client's retry policy for this call. */
  retry?: Partial<RetryPolicy>;
}

/** Options of {@link MlflowClient.createRun}. */
export interface CreateRunOptions {
  experimentId: string;
  /** Shown in the UI; the server makes one up when absent. */
  runName?: string;
  tags?: Record<string, string>;
  /** ms since the epoch; default now. */
  startTime?: number;
  /** Stored as the run's `user_id` (and the tag `mlflow.user` by convention). */
  userId?: string;
}

/** Options of {@link MlflowClient.searchRuns}. */
export interface SearchRunsOptions {
  experimentIds: string[];
  /** MLflow's search syntax, e.g. `params.lr = '0.001' and metrics.acc > 0.9`. */
  filter?: string;
  /** Default 1000. */
  maxResults?: number;
  /** e.g. `['metrics.acc DESC']`. */
  orderBy?: string[];
  pageToken?: string;
  /** Default `ACTIVE_ONLY`. */
  viewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
}

/** Tag set on a run when a value was too long for the server and went up as an artifact. */
export const OVERSIZED_TAG_PREFIX = 'tfjs_antifragile.oversized';

const API = '/api/2.0/mlflow';

/**
 * The experiment tag from which the MLflow 3 UI picks an experiment's view; experiments without
 * it may open in the GenAI ("Evaluations") view.
 */
export const EXPERIMENT_KIND_TAG = 'mlflow.experimentKind';
/** The kind of MLflow 3's own training autologging: the classic runs / metrics / models view. */
export const EXPERIMENT_KIND = 'custom_model_development';
/** The tag MLflow shows as a run's (or an experiment's) description, in Markdown. */
export const NOTE_TAG = 'mlflow.note.content';
const ARTIFACTS_API = '/api/2.0/mlflow-artifacts/artifacts';

// --- wire shapes (snake_case) -------------------------------------------------------------
interface WireKeyValue {
  key: string;
  value: string;
}
interface WireRunInfo {
  run_id?: string;
  run_uuid?: string;
  experiment_id: string;
  run_name?: string;
  user_id?: string;
  status: RunStatus;
  start_time?: number | string;
  end_time?: number | string;
  artifact_uri: string;
  lifecycle_stage: string;
}
interface WireRun {
  info: WireRunInfo;
  data?: {
    metrics?: { key: string; value: unknown; timestamp: number | string; step?: number | string }[];
    params?: WireKeyValue[];
    tags?: WireKeyValue[];
  };
  inputs?: {
    dataset_inputs?: {
      tags?: WireKeyValue[];
      dataset: {
        name: string;
        digest: string;
        source_type: string;
        source: string;
        schema?: string;
        profile?: string;
      };
    }[];
  };
}
interface WireExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage: string;
  tags?: WireKeyValue[];
}

const toRecord = (list: WireKeyValue[] | undefined): Record<string, string> =>
  Object.fromEntries((list ?? []).map((t) => [t.key, t.value]));

const toMetric = (m: {
  key: string;
  value: unknown;
  timestamp: number | string;
  step?: number | string;
}): Metric => ({
  key: m.key,
  value: decodeMetricValue(m.value),
  timestamp: Number(m.timestamp),
  step: Number(m.step ?? 0),
});

function toRunInfo(info: WireRunInfo): RunInfo {
  return {
    runId: info.run_id ?? info.run_uuid ?? '',
    experimentId: info.experiment_id,
    runName: info.run_name ?? '',
    userId: info.user_id ?? '',
    status: info.status,
    startTime: Number(info.start_time ?? 0),
    endTime: info.end_time === undefined ? undefined : Number(info.end_time),
    artifactUri: info.artifact_uri,
    lifecycleStage: info.lifecycle_stage,
  };
}

function toRun(run: WireRun): Run {
  return {
    info: toRunInfo(run.info),
    data: {
      metrics: Object.fromEntries((run.data?.metrics ?? []).map((m) => [m.key, toMetric(m)])),
      params: toRecord(run.data?.params),
      tags: toRecord(run.data?.tags),
    },
    inputs: (run.inputs?.dataset_inputs ?? []).map((d) => ({
      tags: toRecord(d.tags),
      dataset: {
        name: d.dataset.name,
        digest: d.dataset.digest,
        sourceType: d.dataset.source_type,
        source: d.dataset.source,
        schema: d.dataset.schema,
        profile: d.dataset.profile,
      },
    })),
  };
}

function toExperiment(e: WireExperiment): Experiment {
  return {
    experimentId: e.experiment_id,
    name: e.name,
    artifactLocation: e.artifact_location ?? '',
    lifecycleStage: e.lifecycle_stage,
    tags: toRecord(e.tags),
  };
}

const toWireTags = (tags: Record<string, string> | undefined): WireKeyValue[] =>
  Object.entries(tags ?? {}).map(([key, value]) => ({ key, value }));

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export function checkArtifactPath(path: string): void {
  const problem = artifactPathProblem(path);
  if (problem !== undefined) {
    throw new MlflowValidationError(
      'artifact path',
      path,
      `${problem}; give a relative path like 'reports/epoch_1.json'`,
    );
  }
}

function checkLength(field: string, value: string | undefined, limit: number): void {
  if (value !== undefined && value.length > limit) {
    throw new MlflowValidationError(
      field,
      value,
      `at most ${limit} characters (got ${value.length})`,
    );
  }
}

/**
 * The path below the artifact proxy that holds a run's artifacts, from the run's artifact URI
 * (`mlflow-artifacts:/<experiment>/<run>/artifacts`, as a server started with default settings
 * gives its runs).
 */
export function proxyRoot(artifactUri: string): string | undefined {
  const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/*(.*)$/.exec(artifactUri);
  return match ? match[1].replace(/\/+$/, '') : undefined;
}

/**
 * The MLflow tracking client: one method per REST call, explicit ids, typed results.
 *
 * ```ts
 * const client = new MlflowClient(); // MLFLOW_TRACKING_URI etc.
 * const exp = await client.getOrCreateExperiment('mnist');
 * const run = await client.createRun({ experimentId: exp.experimentId, runName: 'cnn' });
 * await client.logBatch(run.runId, { metrics: [{ key: 'loss', value: 0.3, step: 0 }] });
 * await client.setTerminated(run.runId, 'FINISHED');
 * ```
 */
export class MlflowClient {
  /** The resolved connection settings. */
  readonly config: MlflowConfig;
  private readonly http: HttpTransport;
  private readonly artifactRoots = new Map<string, string>();

  constructor(options: MlflowClientOptions = {}) {
    this.config = resolveMlflowConfig(options);
    this.http = new HttpTransport(this.config, { ...DEFAULT_RETRY_POLICY, ...options.retry });
  }

  /** `true` when the server's `/health` answers OK (one attempt, no retries). */
  async health(timeoutMs = 5000): Promise<boolean> {
    try {
      const body = await this.http.send({
        method: 'GET',
        path: '/health',
        retry: { maxRetries: 0, timeoutMs },
      });
      return Buffer.from(body).toString('utf8').trim() === 'OK';
    } catch {
      return false;
    }
  }

  // --- experiments ------------------------------------------------------------------------

  /** The experiment of that name, or `undefined` if there is none. */
  async getExperimentByName(name: string, options?: CallOptions): Promise<Experiment | undefined> {
    try {
      const r = await this.http.json<{ experiment: WireExperiment }>({
        method: 'GET',
        path: `${API}/experiments/get-by-name`,
        query: { experiment_name: name },
        retry: options?.retry,
      });
      return toExperiment(r.experiment);
    } catch (err) {
      if (err instanceof MlflowRequestError && err.errorCode === 'RESOURCE_DOES_NOT_EXIST') {
        return undefined;
      }
      throw err;
    }
  }

  /** Creates an experiment and returns its id. */
  async createExperiment(
    name: string,
    tags?: Record<string, string>,
    options?: CallOptions,
  ): Promise<string> {
    checkLength('experiment name', name, MLFLOW_LIMITS.experimentNameLength);
    const r = await this.http.json<{ experiment_id: string }>({
      method: 'POST',
      path: `${API}/experiments/create`,
      json: { name, tags: toWireTags(tags) },
      retry: options?.retry,
    });
    return r.experiment_id;
  }

  /**
   * The experiment of that name, created if missing (safe when two clients race to create it).
   * @throws MlflowError if the experiment exists but is deleted.
   */
  async getOrCreateExperiment(name: string, options?: CallOptions): Promise<Experiment> {
    let experiment = await this.getExperimentByName(name, options);
    if (!experiment) {
      try {
        await this.createExperiment(name, { [EXPERIMENT_KIND_TAG]: EXPERIMENT_KIND }, options);
      } catch (err) {
        if (!(err instanceof MlflowRequestError && err.errorCode === 'RESOURCE_ALREADY_EXISTS')) {
          throw err;
        }
      }
      experiment = await this.getExperimentByName(name, options);
    }
    if (!experiment) throw new MlflowError(`experiment '${name}' could not be created`);
    if (experiment.lifecycleStage === 'deleted') {
      throw new MlflowError(
        `experiment '${name}' (id ${experiment.experimentId}) is deleted; restore it ` +
          `(\`mlflow experiments restore\`) or choose another experimentName`,
      );
    }
    if (experiment.tags[EXPERIMENT_KIND_TAG] === undefined) {
      // An experiment made elsewhere (the UI, `mlflow experiments create`) would open in the
      // MLflow 3 UI's GenAI view; a kind someone chose is left alone.
      await this.setExperimentTag(
        experiment.experimentId,
        EXPERIMENT_KIND_TAG,
        EXPERIMENT_KIND,
        options,
      );
      experiment.tags[EXPERIMENT_KIND_TAG] = EXPERIMENT_KIND;
    }
    return experiment;
  }

  /** Sets one tag of an experiment. */
  async setExperimentTag(
    experimentId: string,
    key: string,
    value: string,
    options?: CallOptions,
  ): Promise<void> {
    await this.http.json({
      method: 'POST',
      path: `${API}/experiments/set-experiment-tag`,
      json: { experiment_id: experimentId, key, value },
      retry: options?.retry,
    });
  }

  /**
   * The MLflow UI's page of a run: `<tracking-uri>/#/experiments/<experiment-id>/runs/<run-id>`
   * (MLflow 3's route).
   */
  runUrl(experimentId: string, runId: string): string {
    return `${this.config.trackingUri}/#/experiments/${experimentId}/runs/${runId}`;
  }

  // --- runs -------------------------------------------------------------------------------

  /**
   * Creates a run in RUNNING state. Tags go up with it; a tag value too long for the server
   * follows through {@link logBatch} (as an artifact, see there).
   */
  async createRun(run: CreateRunOptions, options?: CallOptions): Promise<RunInfo> {
    const tags = normalizeBatch({ tags: run.tags ?? {} }).tags;
    const fitting = tags.filter((t) => t.value.length <= MLFLOW_LIMITS.tagValueLength);
    const r = await this.http.json<{ run: WireRun }>({
      method: 'POST',
      path: `${API}/runs/create`,
      json: {
        experiment_id: run.experimentId,
        run_name: run.runName,
        start_time: run.startTime ?? Date.now(),
        user_id: run.userId,
        tags: fitting,
      },
      retry: options?.retry,
    });
    const info = toRunInfo(r.run.info);
    this.artifactRoots.set(info.runId, info.artifactUri);
    if (fitting.length < tags.length) {
      await this.logBatch(info.runId, { tags: tags.filter((t) => !fitting.includes(t)) }, options);
    }
    return info;
  }

  /** Changes a run's status, end time or name. */
  async updateRun(
    runId: string,
    update: { status?: RunStatus; endTime?: number; runName?: string },
    options?: CallOptions,
  ): Promise<RunInfo> {
    if (update.status !== undefined && !RUN_STATUSES.includes(update.status)) {
      throw new MlflowValidationError(
        'run status',
        update.status,
        `one of ${RUN_STATUSES.join(', ')}`,
      );
    }
    const r = await this.http.json<{ run_info: WireRunInfo }>({
      method: 'POST',
      path: `${API}/runs/update`,
      json: {
        run_id: runId,
        status: update.status,
        end_time: update.endTime,
        run_name: update.runName,
      },
      retry: options?.retry,
    });
    return toRunInfo(r.run_info);
  }

  /** Ends a run: sets its status (default FINISHED) and end time (default now). */
  async setTerminated(
    runId: string,
    status: RunStatus = 'FINISHED',
    endTime: number = Date.now(),
    options?: CallOptions,
  ): Promise<RunInfo> {
    return this.updateRun(runId, { status, endTime }, options);
  }

  /** A run with its latest metrics, params, tags and dataset inputs. */
  async getRun(runId: string, options?: CallOptions): Promise<Run> {
    const r = await this.http.json<{ run: WireRun }>({
      method: 'GET',
      path: `${API}/runs/get`,
      query: { run_id: runId },
      retry: options?.retry,
    });
    const run = toRun(r.run);
    this.artifactRoots.set(runId, run.info.artifactUri);
    return run;
  }

  /** Runs of some experiments that match a filter; one page (see `nextPageToken`). */
  async searchRuns(
    search: SearchRunsOptions,
    options?: CallOptions,
  ): Promise<{ runs: Run[]; nextPageToken?: string }> {
    const r = await this.http.json<{ runs?: WireRun[]; next_page_token?: string }>({
      method: 'POST',
      path: `${API}/runs/search`,
      json: {
        experiment_ids: search.experimentIds,
        filter: search.filter,
        max_results: search.maxResults ?? 1000,
        order_by: search.orderBy,
        page_token: search.pageToken,
        run_view_type: search.viewType,
      },
      retry: options?.retry,
    });
    return {
      runs: (r.runs ?? []).map(toRun),
      nextPageToken: r.next_page_token || undefined,
    };
  }

  /** Every value of one metric of a run, in the server's order (all pages). */
  async getMetricHistory(runId: string, key: string, options?: CallOptions): Promise<Metric[]> {
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.http.json<{
        metrics?: Parameters<typeof toMetric>[0][];
        next_page_token?: string;
      }>({
        method: 'GET',
        path: `${API}/metrics/get-history`,
        query: { run_id: runId, metric_key: key, max_results: 25000, page_token: pageToken },
        retry: options?.retry,
      });
      out.push(...(r.metrics ?? []).map(toMetric));
      pageToken = r.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  // --- logging ----------------------------------------------------------------------------

  /**
   * Logs metrics, params and tags. Entries are checked first (invalid keys or values throw
   * {@link MlflowValidationError} and nothing is sent), then sent in as many `log-batch`
   * requests as the server's limits need, in order. A param value over 6000 or a tag value over
   * 8000 characters is not cut silently: the full value goes up as the artifact
   * `oversized/params/<key>.txt` (or `oversized/tags/…`), the logged value is its head plus a
   * note naming the artifact, and the tag `tfjs_antifragile.oversized.param.<key>` (or `.tag.`)
   * names it too. Safe to retry: metrics keep their timestamps and the server skips duplicates.
   */
  async logBatch(runId: string, input: BatchInput, options?: CallOptions): Promise<void> {
    const batch = normalizeBatch(input);
    await this.moveOversized(runId, batch, options);
    for (const part of splitBatch(batch)) {
      await this.http.json({
        method: 'POST',
        path: `${API}/runs/log-batch`,
        json: { run_id: runId, ...part },
        retry: options?.retry,
      });
    }
  }

  private async moveOversized(runId: string, batch: WireBatch, options?: CallOptions) {
    const extraTags: { key: string; value: string }[] = [];
    const move = async (
      kind: 'param' | 'tag',
      entry: { key: string; value: string },
      limit: number,
    ) => {
      if (entry.value.length <= limit) return;
      const path = `oversized/${kind}s/${sanitizeKey(entry.key).replace(/[ :]/g, '_')}.txt`;
      await this.logArtifact(runId, path, entry.value, { contentType: 'text/plain', ...options });
      const note = ` ...[${entry.value.length} characters; full value in artifact ${path}]`;
      entry.value = entry.value.slice(0, limit - note.length) + note;
      extraTags.push({
        key: sanitizeKey(`${OVERSIZED_TAG_PREFIX}.${kind}.${entry.key}`),
        value: path,
      });
    };
    for (const p of batch.params) await move('param', p, MLFLOW_LIMITS.paramValueLength);
    for (const t of batch.tags) await move('tag', t, MLFLOW_LIMITS.tagValueLength);
    batch.tags.push(...extraTags);
  }

  /** Logs one metric (see {@link logBatch}). */
  async logMetric(
    runId: string,
    key: string,
    value: number,
    step = 0,
    timestamp = Date.now(),
    options?: CallOptions,
  ): Promise<void> {
    await this.logBatch(runId, { metrics: [{ key, value, step, timestamp }] }, options);
  }

  /** Logs one param (see {@link logBatch}). */
  async logParam(
    runId: string,
    key: string,
    value: string | number | boolean,
    options?: CallOptions,
  ) {
    await this.logBatch(runId, { params: { [key]: value } }, options);
  }

  /** Sets one tag (see {@link logBatch}). */
  async setTag(runId: string, key: string, value: string, options?: CallOptions) {
    await this.logBatch(runId, { tags: { [key]: value } }, options);
  }

  /**
   * Records the datasets a run used (`runs/log-inputs`): name, digest, source. Lengths are
   * checked against the server's limits first.
   */
  async logInputs(runId: string, datasets: DatasetInput[], options?: CallOptions): Promise<void> {
    const L = MLFLOW_LIMITS;
    const wire = datasets.map(({ dataset: d, tags }, i) => {
      const at = `datasets[${i}]`;
      for (const field of ['name', 'digest', 'sourceType', 'source'] as const) {
        if (typeof d[field] !== 'string' || d[field] === '') {
          throw new MlflowValidationError(`${at}.${field}`, d[field], 'a non-empty string');
        }
      }
      checkLength(`${at}.name`, d.name, L.datasetNameLength);
      checkLength(`${at}.digest`, d.digest, L.datasetDigestLength);
      checkLength(`${at}.source`, d.source, L.datasetSourceLength);
      checkLength(`${at}.schema`, d.schema, L.datasetSchemaLength);
      checkLength(`${at}.profile`, d.profile, L.datasetProfileLength);
      const wireTags = toWireTags(tags);
      for (const t of wireTags) {
        checkLength(`${at} tag key`, t.key, L.inputTagKeyLength);
        checkLength(`${at} tag '${t.key}' value`, t.value, L.inputTagValueLength);
      }
      return {
        tags: wireTags,
        dataset: {
          name: d.name,
          digest: d.digest,
          source_type: d.sourceType,
          source: d.source,
          schema: d.schema,
          profile: d.profile,
        },
      };
    });
    await this.http.json({
      method: 'POST',
      path: `${API}/runs/log-inputs`,
      json: { run_id: runId, datasets: wire },
      retry: options?.retry,
    });
  }

  // --- artifacts --------------------------------------------------------------------------

  private async artifactBase(runId: string, options?: CallOptions): Promise<string> {
    let uri = this.artifactRoots.get(runId);
    if (uri === undefined) {
      uri = (await this.getRun(runId, options)).info.artifactUri;
    }
    const root = proxyRoot(uri);
    if (root === undefined) {
      throw new MlflowError(
        `run ${runId} keeps its artifacts at '${uri}', which this client cannot reach: it ` +
          `writes through the tracking server's artifact proxy (mlflow-artifacts:/ URIs). ` +
          `Start the server with artifact serving on (the default, --serve-artifacts) and ` +
          `without a --default-artifact-root outside it`,
      );
    }
    return root === '' ? ARTIFACTS_API : `${ARTIFACTS_API}/${encodePath(root)}`;
  }

  /**
   * Uploads one file to a run's artifacts, at `path` (relative, `/`-separated). A string is
   * sent as UTF-8. Uploading the same path again replaces the file.
   */
  async logArtifact(
    runId: string,
    path: string,
    data: string | Uint8Array,
    options?: CallOptions & { contentType?: string },
  ): Promise<void> {
    checkArtifactPath(path);
    const base = await this.artifactBase(runId, options);
    const body = typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'utf8')) : data;
    await this.http.send({
      method: 'PUT',
      path: `${base}/${encodePath(path)}`,
      body,
      contentType: options?.contentType ?? guessContentType(path),
      retry: options?.retry,
    });
  }

  /** Downloads one artifact file of a run. */
  async downloadArtifact(runId: string, path: string, options?: CallOptions): Promise<Uint8Array> {
    checkArtifactPath(path);
    const base = await this.artifactBase(runId, options);
    return this.http.send({
      method: 'GET',
      path: `${base}/${encodePath(path)}`,
      retry: options?.retry,
    });
  }

  /** The files and folders directly under `path` (default: the root) of a run's artifacts. */
  async listArtifacts(
    runId: string,
    path?: string,
    options?: CallOptions,
  ): Promise<ArtifactFile[]> {
    if (path !== undefined) checkArtifactPath(path);
    const r = await this.http.json<{
      files?: { path: string; is_dir?: boolean; file_size?: number | string }[];
    }>({
      method: 'GET',
      path: `${API}/artifacts/list`,
      query: { run_id: runId, path },
      retry: options?.retry,
    });
    return (r.files ?? []).map((f) => ({
      path: f.path,
      isDir: Boolean(f.is_dir),
      fileSize: f.file_size === undefined ? undefined : Number(f.file_size),
    }));
  }
}

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json',
  csv: 'text/csv',
  html: 'text/html',
  htm: 'text/html',
  txt: 'text/plain',
  md: 'text/markdown',
  bin: 'application/octet-stream',
  png: 'image/png',
  svg: 'image/svg+xml',
};

/** The content type of an artifact, from its extension. */
export function guessContentType(path: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase();
  return (ext && CONTENT_TYPES[ext]) ?? 'application/octet-stream';
}
