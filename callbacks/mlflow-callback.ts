import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { AnalysisReport } from '../src/analysis/types';
import { analysisCsv, analysisMetrics, analysisParams } from './mlflow-records';
import {
  MlflowClient,
  MlflowError,
  MlflowRun,
  sanitizeKey,
  type DatasetInput,
  type FlushResult,
  type MlflowConnectionOptions,
  type MlflowRunOptions,
  type ParamValue,
  type RetryPolicy,
  type RunStatus,
} from '../src/mlflow';
import { resolveLogs } from './logs';
import { checkCallbackTfjs, checkModelTfjs } from '../src/util/tfjs-copies';
import { modelArtifacts } from './mlflow-model';

/** What this callback reads of a `SynapticFilterCallback` (placed before it). */
export interface AnalysisSource {
  readonly reports: readonly AnalysisReport[];
  readonly latest?: AnalysisReport;
}

/** What this callback reads of a `SelectiveRetrainCallback`. */
export interface RetrainSource {
  readonly frozenLayers: readonly string[];
  readonly history: ReadonlyArray<{ epoch: number; frozen: readonly string[] }>;
}

/** Options of {@link MlflowCallback}. Connection options fall back to `MLFLOW_*` variables. */
export interface MlflowCallbackOptions extends MlflowConnectionOptions {
  /** Run name; default: one the server makes up. */
  runName?: string;
  /** Extra params of the run (they win over the ones this callback derives). */
  params?: Record<string, ParamValue>;
  /** Extra tags of the run (they win over the ones this callback sets). */
  tags?: Record<string, string>;
  /** A `SynapticFilterCallback` placed before this one: its reports are logged. */
  analysis?: AnalysisSource;
  /** A `SelectiveRetrainCallback`: its frozen layers are logged per epoch. */
  retrain?: RetrainSource;
  /** Datasets the run trains or evaluates on (`log-inputs`): name, digest, source. */
  datasets?: DatasetInput[];
  /** Upload the trained model (`model/model.json`, `model/weights.bin`) at train end; default true. */
  logModel?: boolean;
  /** Upload `model_summary.txt` at train begin; default true. */
  logModelSummary?: boolean;
  /** A client to use instead of one built from the connection options. */
  client?: MlflowClient;
  /** Local run folder for the spool; default `runs/mlflow/<run id>`. */
  localDir?: string;
  /** How long the run end waits for the server, in ms; default 30 000. */
  closeTimeoutMs?: number;
  /** Retries, waits and reconnect pauses of the run's outbox (see `MlflowRunOptions`). */
  outbox?: {
    flushRetry?: Partial<RetryPolicy>;
    reconnectMs?: number;
    maxReconnectMs?: number;
    /** How long the run start waits for the server, in ms; default 3000 (see `MlflowRunOptions`). */
    startWaitMs?: number;
    /**
     * How long an epoch end waits for the server, in ms; default 2000. A slower server gets the
     * rest in the background (spooled), and training goes on.
     */
    flushWaitMs?: number;
  };
  /**
   * Throw logging errors (and so stop training) instead of only warning. Default: true when the
   * environment variable `CI` or `JEST_WORKER_ID` is set, else false. An unreachable server is
   * not an error (metrics are spooled); a refused value, a failed upload or a run that could not
   * start is.
   */
  strict?: boolean;
  /** End the run KILLED on Ctrl-C (SIGINT) during training, then exit as Node would; default true. */
  handleSigint?: boolean;
  /** Where warnings go; default `console.warn`. */
  warn?: (message: string) => void;
}

function packageVersion(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === 'tfjs-antifragile' && pkg.version) return pkg.version;
      } catch {
        /* keep looking */
      }
    }
    dir = path.dirname(dir);
  }
  return 'unknown';
}

function userName(): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    return undefined;
  }
}

function shapeText(shape: unknown): string {
  return JSON.stringify(shape).replace(/null/g, 'None');
}

/** Params describing a compiled model and its optimizer. */
export function modelParams(model: tf.LayersModel): Record<string, ParamValue> {
  const size = (ws: tf.LayerVariable[]) =>
    ws.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
  const out: Record<string, ParamValue> = {
    'model.name': model.name,
    'model.layers': model.layers.filter((l) => l.getClassName() !== 'InputLayer').length,
    'model.total_params': model.countParams(),
    'model.trainable_params': size(model.trainableWeights),
    'model.non_trainable_params': size(model.nonTrainableWeights),
    'model.input_shape': shapeText(model.inputs.map((t) => t.shape)),
    'model.output_shape': shapeText(model.outputs.map((t) => t.shape)),
  };
  const loss = (model as unknown as { loss?: unknown }).loss;
  if (typeof loss === 'string') out['model.loss'] = loss;
  else if (typeof loss === 'function') out['model.loss'] = loss.name || 'custom';
  else if (Array.isArray(loss))
    out['model.loss'] = loss.map((l) => (typeof l === 'string' ? l : l?.name)).join(',');
  if (model.metricsNames?.length) out['model.metrics'] = model.metricsNames.join(',');
  const optimizer = model.optimizer;
  if (optimizer) {
    out['optimizer.name'] = optimizer.getClassName();
    for (const [key, value] of Object.entries(optimizer.getConfig())) {
      if (value === null || value === undefined) continue;
      out[`optimizer.${key}`] =
        typeof value === 'object' ? JSON.stringify(value) : (value as ParamValue);
    }
  }
  return out;
}

/** Params of one `fit` call, from tfjs' callback params. */
function trainParams(params: tf.Callback['params'] | undefined): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  const names: Record<string, string> = {
    epochs: 'epochs',
    initialEpoch: 'initial_epoch',
    batchSize: 'batch_size',
    samples: 'samples',
    steps: 'steps_per_epoch',
    doValidation: 'validation',
  };
  for (const [from, to] of Object.entries(names)) {
    const value = params?.[from];
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string')
      out[to] = value;
  }
  return out;
}

function sanitizeRecord<V>(record: Record<string, V>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const [key, value] of Object.entries(record)) out[sanitizeKey(key)] = value;
  return out;
}

/**
 * Tracks a `model.fit` in MLflow: one run per fit, through {@link MlflowRun} (buffered, spooled
 * while the server is unreachable, flushed in order when it answers).
 *
 * Events, in order:
 * - constructor: options are checked and the connection resolved (`MLFLOW_TRACKING_URI` …): a
 *   configuration error throws here, before any training;
 * - `onTrainBegin`: the run starts in experiment `experimentName` with params (model summary
 *   figures, optimizer and its settings, batch size, epochs, `params`) and tags (`mlflow.source.*`,
 *   `mlflow.user`, `tfjs.backend`, `tfjs.version`, `tfjs_antifragile.version`, `tags`); the model
 *   summary goes up as `model_summary.txt`, `datasets` as dataset inputs; a SIGINT handler is
 *   installed;
 * - `onEpochEnd(epoch, logs)`: every number in `logs` becomes a metric with `step = epoch`; each
 *   new analysis report gives `psi_<score>/<filter>/<parameter>` and `labels_<score>/<filter>/<label>`
 *   metrics (step = the report's epoch), `analysis.*` params (once) and the artifacts
 *   `analysis/epoch_<n>.json` and `.csv`; each new retrain record gives `retrain/frozen_layers`
 *   and `frozen/<layer>` for each layer with weights (1 frozen, 0 not); then the outbox is
 *   flushed (briefly: it never holds training for long);
 * - `onTrainEnd`: `retrain/history.json` and the model (`model/model.json` + `model/weights.bin`)
 *   go up, and the run ends FINISHED, waiting up to `closeTimeoutMs` for the outbox.
 *
 * tfjs does not call `onTrainEnd` when training throws: wrap the fit with {@link track} to end the
 * run FAILED (`await cb.track(model.fit(...))`). A run left open by a fit that threw is also ended
 * FAILED at the next `onTrainBegin`. On SIGINT the run ends KILLED and the process exits as Node
 * would (unless other SIGINT listeners are installed: then they decide).
 *
 * Logging never stops training unless `strict`: failures are warnings.
 */
export class MlflowCallback extends tf.Callback {
  /** The client runs go through. */
  readonly client: MlflowClient;
  readonly strict: boolean;
  private readonly options: MlflowCallbackOptions;
  private readonly warnFn: (message: string) => void;
  private current?: MlflowRun;
  private analysisSeen = 0;
  private retrainSeen = 0;
  private analysisParamsLogged = false;
  private frozenEverSeen = new Set<string>();
  private sigintHandler?: () => void;
  private closing?: Promise<FlushResult | undefined>;

  constructor(options: MlflowCallbackOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new MlflowError('MlflowCallback: options must be an object');
    }
    const check = (name: keyof MlflowCallbackOptions, ok: boolean, allowed: string) => {
      if (options[name] !== undefined && !ok) {
        throw new MlflowError(
          `MlflowCallback: option '${name}' must be ${allowed}; got ${JSON.stringify(options[name])}`,
        );
      }
    };
    check(
      'closeTimeoutMs',
      Number.isFinite(options.closeTimeoutMs) && options.closeTimeoutMs! >= 0,
      'a number of ms ≥ 0',
    );
    const flushWaitMs = options.outbox?.flushWaitMs;
    if (flushWaitMs !== undefined && !(Number.isFinite(flushWaitMs) && flushWaitMs >= 0)) {
      throw new MlflowError(
        `MlflowCallback: option 'outbox.flushWaitMs' must be a number of ms ≥ 0; got ${JSON.stringify(flushWaitMs)}`,
      );
    }
    check(
      'analysis',
      Array.isArray(options.analysis?.reports),
      'an object with a `reports` array (a SynapticFilterCallback)',
    );
    check(
      'retrain',
      Array.isArray(options.retrain?.history),
      'an object with a `history` array (a SelectiveRetrainCallback)',
    );
    check('datasets', Array.isArray(options.datasets), 'an array of { dataset, tags? }');
    for (const name of ['logModel', 'logModelSummary', 'strict', 'handleSigint'] as const) {
      check(name, typeof options[name] === 'boolean', 'a boolean');
    }
    this.options = options;
    this.client = options.client ?? new MlflowClient(options);
    this.strict =
      options.strict ?? (process.env.CI !== undefined || process.env.JEST_WORKER_ID !== undefined);
    this.warnFn = options.warn ?? ((message) => console.warn(message));
  }

  private get flushWaitMs(): number {
    return this.options.outbox?.flushWaitMs ?? 2000;
  }

  /** The run of the current (or last) fit, once started. */
  get run(): MlflowRun | undefined {
    return this.current;
  }

  /** Its id. */
  get runId(): string | undefined {
    return this.current?.runId;
  }

  private fail(context: string, err: unknown): void {
    const message = `[MlflowCallback] ${context}: ${err instanceof Error ? err.message : String(err)}`;
    this.warnFn(message);
    if (this.strict) throw err instanceof Error ? err : new MlflowError(message);
  }

  private checkFlush(result: FlushResult, context: string): void {
    if (result.errors.length > 0) {
      const err = result.errors[0];
      const more = result.errors.length > 1 ? ` (and ${result.errors.length - 1} more)` : '';
      this.fail(context, new MlflowError(`${err.message}${more}`));
    }
  }

  /** Runs `fn`, reporting (not throwing, unless strict) what it throws. */
  private guard(context: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(context, err);
    }
  }

  /** Called by `fit`; a model of another tfjs copy is a `TfjsCopiesError` (not tfjs' own error). */
  override setModel(model: Parameters<tf.Callback['setModel']>[0]): void {
    checkModelTfjs('MlflowCallback', model);
    super.setModel(model);
  }

  override async onTrainBegin(): Promise<void> {
    checkCallbackTfjs('MlflowCallback', this, MlflowCallback, this.model);
    if (this.current && !this.current.ended) {
      await this.close('FAILED', new Error('the previous fit ended without onTrainEnd (it threw)'));
    }
    this.current = undefined;
    this.closing = undefined;
    this.analysisSeen = 0;
    this.retrainSeen = 0;
    this.analysisParamsLogged = false;
    const model = this.model as tf.LayersModel;
    // Every layer with weights gets a `frozen/<layer>` curve, from the first record on.
    this.frozenEverSeen = new Set(
      this.options.retrain
        ? model.layers.filter((l) => l.weights.length > 0).map((l) => l.name)
        : [],
    );

    const tags: Record<string, string> = {
      'mlflow.source.name': process.argv[1]
        ? path.relative(process.cwd(), process.argv[1]) || process.argv[1]
        : 'node',
      'mlflow.source.type': 'LOCAL',
      'tfjs.backend': tf.getBackend(),
      'tfjs.version': tf.version.tfjs,
      'tfjs_antifragile.version': packageVersion(),
    };
    const user = userName();
    if (user) tags['mlflow.user'] = user;
    let params: Record<string, ParamValue> = {};
    try {
      params = { ...modelParams(model), ...trainParams(this.params) };
    } catch (err) {
      this.fail('could not read the model summary figures', err);
    }
    const runOptions: MlflowRunOptions = {
      experimentName: this.options.experimentName,
      runName: this.options.runName,
      tags: { ...tags, ...this.options.tags },
      params: sanitizeRecord({ ...params, ...this.options.params }),
      userId: user,
      localDir: this.options.localDir,
      closeTimeoutMs: this.options.closeTimeoutMs,
      flushRetry: this.options.outbox?.flushRetry,
      reconnectMs: this.options.outbox?.reconnectMs,
      maxReconnectMs: this.options.outbox?.maxReconnectMs,
      startWaitMs: this.options.outbox?.startWaitMs,
      onStatus: (message) => this.warnFn(`[MlflowCallback] ${message}`),
    };
    try {
      this.current = await MlflowRun.start(this.client, runOptions);
    } catch (err) {
      this.fail('could not start the MLflow run (training goes on without tracking)', err);
      return;
    }
    const run = this.current;
    if (this.options.logModelSummary ?? true) {
      this.guard('model summary', () => {
        const lines: string[] = [];
        model.summary(120, undefined, (...args: unknown[]) =>
          lines.push(args.map(String).join(' ')),
        );
        run.logArtifact('model_summary.txt', lines.join('\n') + '\n', 'text/plain');
      });
    }
    if (this.options.datasets?.length) {
      this.guard('dataset inputs', () => run.logInputs(this.options.datasets!));
    }
    this.logNewAnalyses(run);
    this.installSigint();
    this.checkFlush(await run.flush({ waitMs: this.flushWaitMs }), 'logging the run start');
  }

  override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
    const run = this.current;
    if (!run || run.ended) return;
    const values = await resolveLogs(logs);
    this.guard(`epoch ${epoch} metrics`, () => run.logMetrics(sanitizeRecord(values), epoch));
    this.logNewAnalyses(run);
    this.logNewRetrainRecords(run);
    this.checkFlush(await run.flush({ waitMs: this.flushWaitMs }), `epoch ${epoch}`);
  }

  override async onTrainEnd(): Promise<void> {
    const run = this.current;
    if (!run || run.ended) {
      this.removeSigint();
      return;
    }
    this.logNewAnalyses(run);
    this.logNewRetrainRecords(run);
    if (this.options.retrain) {
      const history = this.options.retrain.history;
      this.guard('retrain history', () =>
        run.logArtifact(
          'retrain/history.json',
          JSON.stringify(history, null, 2),
          'application/json',
        ),
      );
    }
    if (this.options.logModel ?? true) {
      try {
        await this.logModel(run);
      } catch (err) {
        this.fail('could not save the model', err);
      }
    }
    await this.close('FINISHED');
  }

  private logNewAnalyses(run: MlflowRun): void {
    const source = this.options.analysis;
    if (!source) return;
    const reports = source.reports;
    if (reports.length < this.analysisSeen) this.analysisSeen = 0; // the source was reset
    for (const report of reports.slice(this.analysisSeen)) {
      const epoch = report.epoch ?? 0;
      const name = `analysis/epoch_${epoch}`;
      this.guard(`analysis of epoch ${epoch}`, () => {
        if (!this.analysisParamsLogged) {
          run.logParams(analysisParams(report));
          this.analysisParamsLogged = true;
        }
        run.logMetrics(analysisMetrics(report), epoch);
        run.logArtifact(`${name}.json`, JSON.stringify(report), 'application/json');
        run.logArtifact(`${name}.csv`, analysisCsv(report), 'text/csv');
      });
    }
    this.analysisSeen = reports.length;
  }

  private logNewRetrainRecords(run: MlflowRun): void {
    const source = this.options.retrain;
    if (!source) return;
    const history = source.history;
    if (history.length < this.retrainSeen) this.retrainSeen = 0;
    for (const record of history.slice(this.retrainSeen)) {
      for (const layer of record.frozen) this.frozenEverSeen.add(layer);
      const metrics: Record<string, number> = { 'retrain/frozen_layers': record.frozen.length };
      for (const layer of this.frozenEverSeen) {
        metrics[sanitizeKey(`frozen/${layer}`)] = record.frozen.includes(layer) ? 1 : 0;
      }
      this.guard(`frozen layers of epoch ${record.epoch}`, () => {
        run.logMetrics(metrics, record.epoch);
        run.setTags({ 'retrain.frozen_layers': record.frozen.join(',') });
      });
    }
    this.retrainSeen = history.length;
  }

  private async logModel(run: MlflowRun): Promise<void> {
    for (const file of await modelArtifacts(this.model as tf.LayersModel)) {
      run.logArtifact(file.path, file.data, file.contentType);
    }
  }

  /**
   * Awaits a training promise (`model.fit(...)`); if it rejects, ends the run FAILED (with the
   * error as the tag `tfjs_antifragile.error` and the artifact `error.txt`) and rethrows.
   */
  async track<T>(training: Promise<T>): Promise<T> {
    try {
      return await training;
    } catch (err) {
      try {
        await this.close('FAILED', err);
      } catch (closeErr) {
        this.warnFn(`[MlflowCallback] could not end the run FAILED: ${String(closeErr)}`);
      }
      throw err;
    }
  }

  /**
   * Sends everything queued, waiting up to `timeoutMs` (default `closeTimeoutMs`) for the
   * server. Use it after training if the run end could not reach the server.
   */
  async flush(timeoutMs?: number): Promise<FlushResult | undefined> {
    const run = this.current;
    if (!run) return undefined;
    const result = await run.flush({
      force: true,
      timeoutMs: timeoutMs ?? this.options.closeTimeoutMs ?? 30_000,
    });
    this.checkFlush(result, 'flush');
    return result;
  }

  /**
   * Ends the run now with `status` (default FINISHED) after what is queued, waiting up to
   * `closeTimeoutMs`; with `error`, records it first. What the server did not get stays in the
   * spool (its path is in the warning) and a later {@link flush} sends it. Idempotent.
   */
  close(status: RunStatus = 'FINISHED', error?: unknown): Promise<FlushResult | undefined> {
    if (!this.closing) this.closing = this.doClose(status, error);
    return this.closing;
  }

  private async doClose(status: RunStatus, error?: unknown): Promise<FlushResult | undefined> {
    this.removeSigint();
    const run = this.current;
    if (!run || run.ended) return undefined;
    if (error !== undefined) {
      const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const stack = error instanceof Error && error.stack ? error.stack : text;
      this.guard('recording the error', () => {
        run.setTags({ 'tfjs_antifragile.error': text });
        run.logArtifact('error.txt', stack + '\n', 'text/plain');
      });
    }
    const result = await run.end(status);
    if (result.pending > 0) {
      this.warnFn(
        `[MlflowCallback] the MLflow server did not take everything before the run end: ` +
          `${result.pending} operation(s) wait in ${result.spoolPath ?? 'memory'}; ` +
          `call flush() when the server is back, or send the spool later with ` +
          `\`tfjs-antifragile sync ${path.dirname(result.spoolPath ?? '.')}\``,
      );
    }
    this.checkFlush(result, `ending the run ${status}`);
    return result;
  }

  private installSigint(): void {
    if (!(this.options.handleSigint ?? true) || this.sigintHandler) return;
    const handler = () => {
      void this.onSigint();
    };
    this.sigintHandler = handler;
    process.on('SIGINT', handler);
  }

  private removeSigint(): void {
    if (this.sigintHandler) process.removeListener('SIGINT', this.sigintHandler);
    this.sigintHandler = undefined;
  }

  private async onSigint(): Promise<void> {
    const model = this.model as tf.LayersModel | undefined;
    if (model) model.stopTraining = true;
    try {
      await this.close('KILLED');
    } catch (err) {
      this.warnFn(`[MlflowCallback] could not end the run KILLED: ${String(err)}`);
    }
    // With no other listener, die of the signal as Node does by default.
    if (process.listenerCount('SIGINT') === 0) process.kill(process.pid, 'SIGINT');
  }
}

/** Factory for {@link MlflowCallback}. */
export function mlflowCallback(options: MlflowCallbackOptions = {}): MlflowCallback {
  return new MlflowCallback(options);
}
