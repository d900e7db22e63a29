/**
 * `MlflowRun`: the ergonomic layer over {@link MlflowClient} for one run. Logging calls only
 * queue (checked at once, sent later); `flush()` sends the queue in order, in server-sized
 * batches. When the server cannot be reached, the queue stays in memory and is written to a
 * spool file in the local run folder; later flushes probe the server with growing pauses and
 * send everything, in order, once it answers. Training code is never held for long: an ordinary
 * flush gives up after a short retry and returns.
 */
import * as fs from 'fs';
import * as path from 'path';
import { normalizeBatch, toWireMetric, type ParamValue } from './batch';
import { checkArtifactPath, type MlflowClient } from './client';
import { MlflowError, MlflowRequestError, MlflowUnavailableError } from './errors';
import type { RetryPolicy } from './http';
import { Spool, type RunOperation } from './spool';
import type { DatasetInput, RunInfo, RunStatus } from './types';

/** Options of {@link MlflowRun.start}. */
export interface MlflowRunOptions {
  /** Experiment, created if missing. Default: the client's (`MLFLOW_EXPERIMENT_NAME`, else `Default`). */
  experimentName?: string;
  /** Run name; default: one the server makes up. */
  runName?: string;
  /** Tags set when the run is created. */
  tags?: Record<string, string>;
  /** Params logged when the run is created. */
  params?: Record<string, ParamValue>;
  /** Stored as the run's user; default: none. */
  userId?: string;
  /** ms since the epoch; default now. */
  startTime?: number;
  /**
   * The local run folder, where the spool goes while the server is unreachable (created only
   * then). Default `runs/mlflow/<run id>` under the working directory.
   */
  localDir?: string;
  /**
   * Retries of an ordinary flush while the server answers. Default
   * `{ maxRetries: 2, backoffMs: 250, maxBackoffMs: 2000, timeoutMs: 5000 }`: about 1 s when
   * the server refuses connections (at most ~16 s when it hangs), then the run goes offline and
   * probes it with one 3 s attempt per pause. Uploads get 1 ms per 250 bytes more.
   */
  flushRetry?: Partial<RetryPolicy>;
  /** First pause between probes while offline, in ms; doubles per failed probe. Default 1000. */
  reconnectMs?: number;
  /** Longest pause between probes while offline, in ms. Default 30 000. */
  maxReconnectMs?: number;
  /** How long {@link MlflowRun.end} waits for the queue by default, in ms. Default 30 000. */
  closeTimeoutMs?: number;
}

/** Options of {@link MlflowRun.flush}. */
export interface FlushOptions {
  /**
   * Keep trying, with the reconnect pauses, until the queue is empty or `timeoutMs` passes.
   * Default `false`: one short try, then return (offline: only when a probe is due).
   */
  force?: boolean;
  /** Give up after this many ms (default: no limit; with `force`, set one). */
  timeoutMs?: number;
}

/** What a flush did. */
export interface FlushResult {
  /** Operations the server confirmed during this flush. */
  sent: number;
  /** Operations still queued. */
  pending: number;
  /** Whether the server was unreachable at the end of the flush. */
  offline: boolean;
  /** The spool file, while one exists. */
  spoolPath?: string;
  /**
   * What went wrong, with why: operations the server refused as bad input (they cannot succeed
   * and were dropped from the queue), or a 401/403 (then nothing was dropped: the queue waits,
   * spooled, for a later flush). Empty when all went well.
   */
  errors: MlflowError[];
}

interface Queued {
  op: RunOperation;
  spooled: boolean;
}

const DEFAULT_FLUSH_RETRY: Partial<RetryPolicy> = {
  maxRetries: 2,
  backoffMs: 250,
  maxBackoffMs: 2000,
  timeoutMs: 5000,
};
/** While offline, one attempt per probe, with a short time limit. */
const PROBE_RETRY: Partial<RetryPolicy> = { maxRetries: 0, timeoutMs: 3000 };
/** Uploads get extra time per byte on top of the time limit: at least 250 kB/s is assumed. */
const UPLOAD_MS_PER_BYTE = 1 / 250;
const BATCH_GROUP = 5000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const isBatchable = (op: RunOperation) =>
  op.kind === 'metric' || op.kind === 'param' || op.kind === 'tag';

function describeOp(op: RunOperation): string {
  switch (op.kind) {
    case 'metric':
      return `metric '${op.key}' (step ${op.step})`;
    case 'param':
    case 'tag':
      return `${op.kind} '${op.key}'`;
    case 'artifact':
      return `artifact '${op.path}'`;
    case 'inputs':
      return `dataset inputs (${op.datasets.map((d) => d.dataset.name).join(', ')})`;
    case 'end':
      return `run end (${op.status})`;
  }
}

/**
 * One MLflow run with a buffered, spooled, ordered outbox.
 *
 * ```ts
 * const run = await MlflowRun.start(new MlflowClient(), { experimentName: 'mnist' });
 * run.logMetrics({ loss: 0.31, acc: 0.9 }, 0);
 * await run.flush();
 * await run.end('FINISHED');
 * ```
 */
export class MlflowRun {
  private readonly queue: Queued[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private isOffline = false;
  private failures = 0;
  private nextProbeAt = 0;
  private isolate = 0;
  private ending = false;
  private readonly carried: MlflowError[] = [];
  private readonly spool: Spool;
  private readonly flushRetry: Partial<RetryPolicy>;
  private readonly reconnectMs: number;
  private readonly maxReconnectMs: number;
  private readonly closeTimeoutMs: number;

  private constructor(
    /** The client the run talks through. */
    readonly client: MlflowClient,
    /** The run as the server created it. */
    readonly info: RunInfo,
    options: MlflowRunOptions,
  ) {
    this.spool = new Spool(
      options.localDir ?? path.join(process.cwd(), 'runs', 'mlflow', info.runId),
    );
    this.flushRetry = { ...DEFAULT_FLUSH_RETRY, ...options.flushRetry };
    this.reconnectMs = options.reconnectMs ?? 1000;
    this.maxReconnectMs = options.maxReconnectMs ?? 30_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 30_000;
    for (const [name, value] of [
      ['reconnectMs', this.reconnectMs],
      ['maxReconnectMs', this.maxReconnectMs],
      ['closeTimeoutMs', this.closeTimeoutMs],
    ] as const) {
      if (!(Number.isFinite(value) && value >= 0)) {
        throw new MlflowError(`${name} must be a number of ms ≥ 0, got ${value}`);
      }
    }
  }

  /**
   * Creates a run (and its experiment if missing) and logs its params. Needs the server.
   * @throws MlflowUnavailableError when the server cannot be reached; MlflowRequestError or
   *   MlflowValidationError when it refuses what was given.
   */
  static async start(client: MlflowClient, options: MlflowRunOptions = {}): Promise<MlflowRun> {
    if (options.localDir !== undefined && new Spool(options.localDir).exists) {
      throw new MlflowError(
        `localDir '${options.localDir}' holds the spool of an earlier run: send it first ` +
          `(MlflowRun.resume(client, '${new Spool(options.localDir).path}')) or choose another localDir`,
      );
    }
    const name = options.experimentName ?? client.config.experimentName;
    const experiment = await client.getOrCreateExperiment(name);
    const info = await client.createRun({
      experimentId: experiment.experimentId,
      runName: options.runName,
      tags: options.tags,
      startTime: options.startTime,
      userId: options.userId,
    });
    const run = new MlflowRun(client, info, options);
    if (options.params && Object.keys(options.params).length > 0) {
      await client.logBatch(info.runId, { params: options.params });
    }
    return run;
  }

  /**
   * Takes up a spool left behind (by a crash, or a run that ended while the server was down):
   * its operations are queued again, in order. Call {@link flush} with `force` to send them.
   */
  static resume(
    client: MlflowClient,
    spoolPath: string,
    options: Omit<MlflowRunOptions, 'localDir'> = {},
  ): MlflowRun {
    const { header, operations } = Spool.read(spoolPath);
    const info: RunInfo = {
      runId: header.runId,
      experimentId: header.experimentId,
      artifactUri: header.artifactUri,
      runName: '',
      userId: '',
      status: 'RUNNING',
      startTime: 0,
      lifecycleStage: 'active',
    };
    const run = new MlflowRun(client, info, { ...options, localDir: path.dirname(spoolPath) });
    for (const op of operations) {
      run.queue.push({ op, spooled: true });
      if (op.kind === 'end') run.ending = true;
    }
    return run;
  }

  /** The run id. */
  get runId(): string {
    return this.info.runId;
  }

  /** Operations queued, not yet confirmed by the server. */
  get pending(): number {
    return this.queue.length;
  }

  /** Whether the last attempt to reach the server failed. */
  get offline(): boolean {
    return this.isOffline;
  }

  /** Where the spool file is (it exists only while the server is or was unreachable). */
  get spoolPath(): string {
    return this.spool.path;
  }

  /** Whether {@link end} has been called. */
  get ended(): boolean {
    return this.ending;
  }

  // --- logging (queues; never waits for the network) -------------------------------------

  /** Queues one metric value. NaN and ±Infinity are allowed. */
  logMetric(key: string, value: number, step = 0, timestamp: number = Date.now()): void {
    const m = toWireMetric({ key, value, step, timestamp });
    this.push({ kind: 'metric', key: m.key, value, step: m.step, timestamp: m.timestamp });
  }

  /** Queues several metric values of one step, sharing one timestamp. */
  logMetrics(values: Record<string, number>, step = 0, timestamp: number = Date.now()): void {
    const checked = Object.entries(values).map(([key, value]) =>
      toWireMetric({ key, value, step, timestamp }),
    );
    for (const m of checked) {
      this.push({ kind: 'metric', key: m.key, value: values[m.key], step, timestamp });
    }
  }

  /** Queues params (each logged once per run: a second, different value is refused). */
  logParams(params: Record<string, ParamValue>): void {
    for (const p of normalizeBatch({ params }).params) this.push({ kind: 'param', ...p });
  }

  /** Queues tags (a later value replaces an earlier one). */
  setTags(tags: Record<string, string>): void {
    for (const t of normalizeBatch({ tags }).tags) this.push({ kind: 'tag', ...t });
  }

  /** Queues an artifact upload; a string is sent as UTF-8. */
  logArtifact(artifactPath: string, data: string | Uint8Array, contentType?: string): void {
    checkArtifactPath(artifactPath);
    const bytes =
      typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'utf8')) : data.slice();
    this.push({ kind: 'artifact', path: artifactPath, contentType, data: bytes });
  }

  /** Queues dataset inputs (name, digest, source of the data the run used). */
  logInputs(datasets: DatasetInput[]): void {
    this.push({ kind: 'inputs', datasets: structuredClone(datasets) });
  }

  private push(op: RunOperation): void {
    if (this.ending) {
      throw new MlflowError(`run ${this.runId} has ended; cannot log ${describeOp(op)}`);
    }
    this.enqueue(op);
  }

  private enqueue(op: RunOperation): void {
    const entry: Queued = { op, spooled: false };
    this.queue.push(entry);
    if (this.spool.exists) this.spoolPending();
  }

  // --- sending ----------------------------------------------------------------------------

  /**
   * Sends the queue, in order. Flushes run one after another. Never throws for the network:
   * the result says what is still pending and what the server refused.
   */
  flush(options: FlushOptions = {}): Promise<FlushResult> {
    const result = this.chain.then(() => this.drain(options));
    this.chain = result.catch(() => undefined);
    return result;
  }

  /**
   * Ends the run with `status` (default FINISHED) after everything queued before it, waiting
   * for the server up to `timeoutMs` (default `closeTimeoutMs`). What is still pending then
   * stays in the spool (see {@link MlflowRun.resume}); a later {@link flush} sends it too.
   * A second call only flushes.
   */
  async end(
    status: RunStatus = 'FINISHED',
    options: { timeoutMs?: number } = {},
  ): Promise<FlushResult> {
    if (!this.ending) {
      this.ending = true;
      this.enqueue({ kind: 'end', status, endTime: Date.now() });
    }
    return this.flush({ force: true, timeoutMs: options.timeoutMs ?? this.closeTimeoutMs });
  }

  private async drain(options: FlushOptions): Promise<FlushResult> {
    const deadline =
      options.timeoutMs === undefined ? Infinity : Date.now() + Math.max(0, options.timeoutMs);
    const errors = this.carried.splice(0);
    let sent = 0;
    while (this.queue.length > 0) {
      const now = Date.now();
      if (now >= deadline) break;
      if (this.isOffline && now < this.nextProbeAt) {
        if (!options.force) break;
        await sleep(Math.min(this.nextProbeAt, deadline) - now);
      }
      const group = this.takeGroup();
      try {
        await this.send(
          group.map((q) => q.op),
          this.isOffline ? PROBE_RETRY : this.flushRetry,
        );
        this.isOffline = false;
        this.failures = 0;
        this.remove(group.length);
        sent += group.length;
      } catch (err) {
        if (err instanceof MlflowUnavailableError) {
          this.isOffline = true;
          this.failures++;
          this.nextProbeAt =
            Date.now() + Math.min(this.maxReconnectMs, this.reconnectMs * 2 ** (this.failures - 1));
          this.spoolPending(errors);
          continue;
        }
        if (err instanceof MlflowRequestError && (err.status === 401 || err.status === 403)) {
          // Credentials, not data, are at fault: keep everything (spooled) for a later try.
          errors.push(err);
          this.spoolPending(errors);
          break;
        }
        if (group.length > 1) {
          // Something in the group is refused: send its operations one by one to find it.
          this.isolate = group.length;
          continue;
        }
        errors.push(
          err instanceof MlflowError
            ? withContext(err, group[0].op)
            : new MlflowError(`${describeOp(group[0].op)}: ${String(err)}`),
        );
        this.remove(1);
      }
    }
    if (this.queue.length === 0) {
      if (this.spool.exists) this.spool.remove();
    } else if (this.ending || this.isOffline) {
      this.spoolPending(errors);
    }
    return {
      sent,
      pending: this.queue.length,
      offline: this.isOffline,
      spoolPath: this.spool.exists ? this.spool.path : undefined,
      errors,
    };
  }

  private takeGroup(): Queued[] {
    if (this.isolate > 0) return this.queue.slice(0, 1);
    if (!isBatchable(this.queue[0].op)) return this.queue.slice(0, 1);
    let n = 1;
    while (n < this.queue.length && n < BATCH_GROUP && isBatchable(this.queue[n].op)) n++;
    return this.queue.slice(0, n);
  }

  private remove(count: number): void {
    this.queue.splice(0, count);
    this.isolate = Math.max(0, this.isolate - count);
  }

  private spoolPending(errors: MlflowError[] = this.carried): void {
    const fresh = this.queue.filter((q) => !q.spooled);
    if (fresh.length === 0) return;
    try {
      this.spool.open({
        runId: this.runId,
        experimentId: this.info.experimentId,
        artifactUri: this.info.artifactUri,
        trackingUri: this.client.config.trackingUri,
      });
      this.spool.append(fresh.map((q) => q.op));
      for (const q of fresh) q.spooled = true;
    } catch (err) {
      errors.push(
        new MlflowError(
          `could not write the spool '${this.spool.path}' (operations stay in memory): ${String(err)}`,
        ),
      );
    }
  }

  private async send(ops: RunOperation[], retry: Partial<RetryPolicy>): Promise<void> {
    const head = ops[0];
    const runId = this.runId;
    if (isBatchable(head)) {
      const metrics = [];
      const params = [];
      const tags = [];
      for (const op of ops) {
        if (op.kind === 'metric') metrics.push(op);
        else if (op.kind === 'param') params.push({ key: op.key, value: op.value });
        else if (op.kind === 'tag') tags.push({ key: op.key, value: op.value });
      }
      await this.client.logBatch(runId, { metrics, params, tags }, { retry });
    } else if (head.kind === 'artifact') {
      const data = head.data ?? new Uint8Array(readFile(head.file));
      const timeoutMs =
        (retry.timeoutMs ?? DEFAULT_FLUSH_RETRY.timeoutMs!) + data.byteLength * UPLOAD_MS_PER_BYTE;
      await this.client.logArtifact(runId, head.path, data, {
        contentType: head.contentType,
        retry: { ...retry, timeoutMs },
      });
    } else if (head.kind === 'inputs') {
      await this.client.logInputs(runId, head.datasets, { retry });
    } else if (head.kind === 'end') {
      await this.client.setTerminated(runId, head.status, head.endTime, { retry });
    }
  }
}

function readFile(file: string | undefined): Buffer {
  if (file === undefined) throw new MlflowError('artifact operation has neither data nor file');
  return fs.readFileSync(file);
}

function withContext(err: MlflowError, op: RunOperation): MlflowError {
  err.message = `${describeOp(op)} was refused: ${err.message}`;
  return err;
}
