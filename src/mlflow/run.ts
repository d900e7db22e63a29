/**
 * `MlflowRun`: the ergonomic layer over {@link MlflowClient} for one run. Everything is an
 * operation in an ordered outbox, the run's creation included: logging calls only queue
 * (checked at once, sent later), and `flush()` sends the queue in order, in server-sized
 * batches. The run has a local id from the start (tag `tfjs_antifragile.local_id`) and gets
 * the server's id when the server confirms its creation, so that nothing waits for the server:
 * when it is slow, down, failing or rate-limiting, the queue is written to a spool file in the
 * local run folder, later flushes probe the server with growing pauses (or as `Retry-After`
 * says) and send everything, in order, once it answers. The spool exists from the start until
 * the server has confirmed the run's end, so a crashed process leaves behind what
 * `MlflowRun.resume` (or `syncSpools`) needs to finish the run.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomUUID } from 'crypto';
import { normalizeBatch, toWireMetric, type ParamValue } from './batch';
import { checkArtifactPath, type MlflowClient } from './client';
import { MlflowError, MlflowRequestError, MlflowUnavailableError } from './errors';
import { MLFLOW_LIMITS } from './limits';
import type { RetryPolicy } from './http';
import { Spool, spoolOwnerAlive, type RunOperation, type SpoolOwnerless } from './spool';
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
   * A run to nest this one under: its id becomes this run's tag `mlflow.parentRunId` (its local
   * id, resolved when sent), and this run is created after it.
   */
  parent?: MlflowRun;
  /**
   * The local run folder: the spool lives there from the start until the server confirms the
   * run's end (then it is deleted, and the folder too if empty). Default
   * `runs/mlflow/<local id>` under the working directory.
   */
  localDir?: string;
  /**
   * How long {@link MlflowRun.start} waits for the server to create the run, in ms; a slower
   * server gets the creation in the background (spooled, like everything else). Default 3000.
   */
  startWaitMs?: number;
  /**
   * Retries of an ordinary flush while the server answers. Default
   * `{ maxRetries: 2, backoffMs: 250, maxBackoffMs: 2000, timeoutMs: 5000 }`: about 1 s when
   * the server refuses connections, then the run goes offline and probes it with one 3 s attempt
   * per pause. Uploads get 1 ms per 250 bytes more.
   */
  flushRetry?: Partial<RetryPolicy>;
  /** First pause between probes while offline, in ms; doubles per failed probe. Default 1000. */
  reconnectMs?: number;
  /**
   * Longest pause between probes while offline, in ms (a longer `Retry-After` wins). Default
   * 30 000.
   */
  maxReconnectMs?: number;
  /** How long {@link MlflowRun.end} waits for the queue by default, in ms. Default 30 000. */
  closeTimeoutMs?: number;
  /**
   * Told when the run goes offline (what failed, what is pending, where it is kept), when it
   * is back (what was sent), and when the server confirms a creation that came late.
   * Default: nothing is said.
   */
  onStatus?: (message: string) => void;
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
  /**
   * Wait at most this many ms; the flush goes on in the background after that (its errors
   * come with a later flush's result). Default: wait until it is done.
   */
  waitMs?: number;
}

/** What a flush did. */
export interface FlushResult {
  /** Operations the server confirmed during this flush. */
  sent: number;
  /** Operations still queued. */
  pending: number;
  /** Whether the server was unreachable at the end of the flush. */
  offline: boolean;
  /** Whether the flush was still going (in the background) when `waitMs` passed. */
  running?: boolean;
  /** The spool file, while one exists. */
  spoolPath?: string;
  /** Why the server was last unreachable, while it is. */
  lastFailure?: string;
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
  /** A send was tried and failed: the server may have acted on it anyway. */
  maybeSent?: boolean;
}

/** Tag holding a run's local id, by which a creation that may have reached the server is found. */
export const LOCAL_ID_TAG = 'tfjs_antifragile.local_id';
const PARENT_TAG = 'mlflow.parentRunId';
const LOCAL_ID = /^local-[0-9a-f]{32}$/;

const DEFAULT_FLUSH_RETRY: Partial<RetryPolicy> = {
  maxRetries: 2,
  backoffMs: 250,
  maxBackoffMs: 2000,
  timeoutMs: 5000,
};
/** While offline, one attempt per probe, with a short time limit. */
const PROBE_RETRY: Partial<RetryPolicy> = { maxRetries: 0, timeoutMs: 3000 };
/** How much longer than its timeout `end()` may take to return (a request finishing). */
const END_GRACE_MS = 500;
/** Uploads get extra time per byte on top of the time limit: at least 250 kB/s is assumed. */
const UPLOAD_MS_PER_BYTE = 1 / 250;
const BATCH_GROUP = 5000;

/** Server ids of the runs this process saw created, by local id. */
const createdRuns = new Map<string, string>();
/** Spools held by live runs of this process. */
const liveSpools = new Set<string>();

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
    case 'create':
      return `run creation${op.runName ? ` ('${op.runName}')` : ''}`;
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
  private draining = false;
  private lastFailure?: string;
  private announcedOffline = false;
  private failures = 0;
  private nextProbeAt = 0;
  private isolate = 0;
  private ending = false;
  private endConfirmed = false;
  private spoolStale = false;
  private createdInfo?: RunInfo;
  private refusal?: MlflowError;
  private readonly carried: MlflowError[] = [];
  private readonly spool: Spool;
  private readonly flushRetry: Partial<RetryPolicy>;
  private readonly reconnectMs: number;
  private readonly maxReconnectMs: number;
  private readonly closeTimeoutMs: number;
  private readonly onStatus?: (message: string) => void;
  private readonly parent?: MlflowRun;
  private readonly label: string;

  private constructor(
    /** The client the run talks through. */
    readonly client: MlflowClient,
    /** The id this process gave the run (tag `tfjs_antifragile.local_id`). */
    readonly localId: string,
    options: MlflowRunOptions,
    created?: RunInfo,
  ) {
    this.createdInfo = created;
    this.spool = new Spool(
      path.resolve(options.localDir ?? path.join(process.cwd(), 'runs', 'mlflow', localId)),
    );
    this.flushRetry = { ...DEFAULT_FLUSH_RETRY, ...options.flushRetry };
    this.reconnectMs = options.reconnectMs ?? 1000;
    this.maxReconnectMs = options.maxReconnectMs ?? 30_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 30_000;
    this.onStatus = options.onStatus;
    this.parent = options.parent;
    this.label = options.runName ?? localId;
    for (const [name, value] of [
      ['reconnectMs', this.reconnectMs],
      ['maxReconnectMs', this.maxReconnectMs],
      ['closeTimeoutMs', this.closeTimeoutMs],
      ['startWaitMs', options.startWaitMs ?? 0],
    ] as const) {
      if (!(Number.isFinite(value) && value >= 0)) {
        throw new MlflowError(`${name} must be a number of ms ≥ 0, got ${value}`);
      }
    }
  }

  /**
   * Starts a run: its creation (experiment created if missing), tags and params are queued and
   * spooled, and sent at once. Waits up to `startWaitMs` for the server; a server that is down,
   * slow or failing gets them later, like every other operation, and the run has its local id
   * until then.
   * @throws MlflowValidationError when a tag, param or name breaks the server's rules;
   *   MlflowRequestError when the server answered within `startWaitMs` and refused the run.
   */
  static async start(client: MlflowClient, options: MlflowRunOptions = {}): Promise<MlflowRun> {
    if (options.localDir !== undefined && new Spool(options.localDir).exists) {
      throw new MlflowError(
        `localDir '${options.localDir}' holds the spool of an earlier run: send it first ` +
          `(MlflowRun.resume(client, '${new Spool(options.localDir).path}')) or choose another localDir`,
      );
    }
    const experimentName = options.experimentName ?? client.config.experimentName;
    if (experimentName.length > MLFLOW_LIMITS.experimentNameLength) {
      throw new MlflowError(
        `experimentName '${experimentName.slice(0, 80)}…' is longer than ` +
          `${MLFLOW_LIMITS.experimentNameLength} characters`,
      );
    }
    const localId = `local-${randomUUID().replace(/-/g, '')}`;
    const tags: Record<string, string> = { ...options.tags, [LOCAL_ID_TAG]: localId };
    if (options.parent) tags[PARENT_TAG] = options.parent.runId;
    normalizeBatch({ tags }); // refuse bad tags now, not when sent
    const run = new MlflowRun(client, localId, options);
    run.queue.push({
      op: {
        kind: 'create',
        experimentName,
        runName: options.runName,
        tags,
        startTime: options.startTime ?? Date.now(),
        userId: options.userId,
      },
      spooled: false,
    });
    if (options.params) run.logParams(options.params);
    liveSpools.add(run.spool.path);
    run.writeSpool(() => {
      run.spool.rewrite(
        run.spoolHeader(),
        run.queue.map((q) => q.op),
      );
      for (const q of run.queue) q.spooled = true;
    });
    const first = await run.flush({ waitMs: options.startWaitMs ?? 3000 });
    if (run.refusal && !first.running) throw run.refusal;
    return run;
  }

  /**
   * Takes up a spool left behind (by a crash, or a run that ended while the server was down):
   * its operations are queued again, in order, and this process owns the spool from now on.
   * Call {@link flush} with `force` to send them, and {@link end} first if the run was never
   * ended (a crashed process: end it `KILLED`).
   * @throws MlflowError when the spool's process is still running (it may still write it).
   */
  static resume(
    client: MlflowClient,
    spoolPath: string,
    options: Omit<MlflowRunOptions, 'localDir' | 'parent'> = {},
  ): MlflowRun {
    const { header, operations } = Spool.read(spoolPath);
    if (spoolOwnerAlive(header, spoolPath, liveSpools)) {
      throw new MlflowError(
        `spool '${spoolPath}' is in use by process ${header.pid} on this host; ` +
          'let it finish (or stop it) first',
      );
    }
    const created: RunInfo | undefined =
      header.runId === undefined
        ? undefined
        : {
            runId: header.runId,
            experimentId: header.experimentId ?? '',
            artifactUri: header.artifactUri ?? '',
            runName: '',
            userId: '',
            status: 'RUNNING',
            startTime: 0,
            lifecycleStage: 'active',
          };
    const run = new MlflowRun(
      client,
      header.localId,
      {
        ...options,
        localDir: path.dirname(spoolPath),
      },
      created,
    );
    if (created) createdRuns.set(header.localId, created.runId);
    for (const op of operations) {
      run.queue.push({ op, spooled: true, maybeSent: true });
      if (op.kind === 'end') run.ending = true;
    }
    liveSpools.add(run.spool.path);
    run.writeSpool(() =>
      run.spool.rewrite(
        run.spoolHeader(),
        run.queue.map((q) => q.op),
      ),
    );
    return run;
  }

  /** The server's run id once it confirmed the creation; the local id until then. */
  get runId(): string {
    return this.createdInfo?.runId ?? this.localId;
  }

  /** Whether the server has confirmed the run's creation. */
  get created(): boolean {
    return this.createdInfo !== undefined;
  }

  /** The run as the server created it, once it did. */
  get info(): RunInfo | undefined {
    return this.createdInfo;
  }

  /** Operations queued, not yet confirmed by the server. */
  get pending(): number {
    return this.queue.length;
  }

  /** Whether the last attempt to reach the server failed. */
  get offline(): boolean {
    return this.isOffline;
  }

  /** Where the spool file is (it exists from the start until the server confirmed the end). */
  get spoolPath(): string {
    return this.spool.path;
  }

  /** Whether {@link end} has been called. */
  get ended(): boolean {
    return this.ending;
  }

  /**
   * Stops using the spool (what is queued stays in it), so that {@link resume} may take it up,
   * in this process too. For a run given up on; nothing should be logged to it after.
   */
  release(): void {
    liveSpools.delete(this.spool.path);
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
    if (this.refusal) return; // the run does not exist; the refusal was reported
    this.enqueue(op);
  }

  private enqueue(op: RunOperation): void {
    this.queue.push({ op, spooled: false });
    if (this.isOffline) this.spoolPending();
  }

  // --- sending ----------------------------------------------------------------------------

  /**
   * Sends the queue, in order. Flushes run one after another. Never throws for the network:
   * the result says what is still pending and what the server refused.
   */
  flush(options: FlushOptions = {}): Promise<FlushResult> {
    const waitMs = options.waitMs;
    // A drain in flight takes up what is queued meanwhile: a bounded wait need not queue another.
    if (waitMs !== undefined && !options.force && this.draining) {
      return Promise.resolve({ ...this.snapshot(), running: true });
    }
    const deadline =
      options.timeoutMs === undefined ? Infinity : Date.now() + Math.max(0, options.timeoutMs);
    const result = this.chain.then(() => this.drain(options.force === true, deadline));
    this.chain = result.catch(() => undefined);
    if (waitMs === undefined) return result;
    return new Promise<FlushResult>((resolve, reject) => {
      let late = false;
      const timer = setTimeout(
        () => {
          late = true;
          // The server is slow: what is pending goes to disk before the caller goes on.
          this.spoolPending();
          resolve({ ...this.snapshot(), running: true });
          result.then(
            (r) => this.carried.push(...r.errors),
            () => undefined,
          );
        },
        Math.max(0, waitMs),
      );
      result.then(
        (r) => {
          if (late) return;
          clearTimeout(timer);
          resolve(r);
        },
        (err: unknown) => {
          if (late) return;
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /**
   * Ends the run with `status` (default FINISHED) after everything queued before it, waiting
   * for the server up to `timeoutMs` (default `closeTimeoutMs`). What is still pending then
   * stays in the spool (see {@link MlflowRun.resume}); a later {@link flush} sends it too.
   * Returns within about `timeoutMs` even when a request in flight hangs. A second call only
   * flushes.
   */
  async end(
    status: RunStatus = 'FINISHED',
    options: { timeoutMs?: number } = {},
  ): Promise<FlushResult> {
    if (!this.ending) {
      this.ending = true;
      if (!this.refusal) this.enqueue({ kind: 'end', status, endTime: Date.now() });
    }
    const timeoutMs = options.timeoutMs ?? this.closeTimeoutMs;
    // Bounded even when a request in flight hangs: then the rest waits in the spool.
    return this.flush({ force: true, timeoutMs, waitMs: timeoutMs + END_GRACE_MS });
  }

  private snapshot(): Omit<FlushResult, 'sent' | 'errors'> & { sent: 0; errors: [] } {
    return {
      sent: 0,
      pending: this.queue.length,
      offline: this.isOffline,
      spoolPath: this.spool.exists ? this.spool.path : undefined,
      lastFailure: this.isOffline ? this.lastFailure : undefined,
      errors: [],
    };
  }

  private async drain(force: boolean, deadline: number): Promise<FlushResult> {
    this.draining = true;
    try {
      return await this.drainQueue(force, deadline);
    } finally {
      this.draining = false;
    }
  }

  private async drainQueue(force: boolean, deadline: number): Promise<FlushResult> {
    const errors = this.carried.splice(0);
    let sent = 0;
    while (this.queue.length > 0) {
      const now = Date.now();
      if (now >= deadline) break;
      if (this.isOffline && now < this.nextProbeAt) {
        if (!force) break;
        await sleep(Math.min(this.nextProbeAt, deadline) - now);
        continue;
      }
      const group = this.takeGroup();
      const policy = this.isOffline ? PROBE_RETRY : this.flushRetry;
      try {
        await this.send(
          group,
          { ...policy, deadline: Number.isFinite(deadline) ? deadline : undefined },
          force,
          deadline,
        );
        this.isOffline = false;
        this.failures = 0;
        this.remove(group.length);
        sent += group.length;
      } catch (err) {
        for (const q of group) q.maybeSent = true;
        if (err instanceof MlflowUnavailableError) {
          this.goOffline(err, errors);
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
        const refused =
          err instanceof MlflowError
            ? withContext(err, group[0].op)
            : new MlflowError(`${describeOp(group[0].op)}: ${String(err)}`);
        errors.push(refused);
        if (group[0].op.kind === 'create') this.refuse(refused);
        else this.remove(1);
      }
    }
    this.settleSpool(errors);
    this.announce(sent);
    errors.push(...this.carried.splice(0));
    return { ...this.snapshot(), sent, errors };
  }

  private goOffline(err: MlflowUnavailableError, errors: MlflowError[]): void {
    this.isOffline = true;
    this.lastFailure = `${err.endpoint}: ${err.lastFailure}`;
    this.failures++;
    const backoff = Math.min(this.maxReconnectMs, this.reconnectMs * 2 ** (this.failures - 1));
    this.nextProbeAt = Date.now() + Math.max(backoff, err.retryAfterMs ?? 0);
    this.spoolPending(errors);
  }

  /** The server refused to create the run: nothing of it can be sent; drop it all. */
  private refuse(err: MlflowError): void {
    this.refusal = err;
    this.queue.splice(0);
    this.isolate = 0;
    this.endConfirmed = true;
  }

  /** Brings the spool file up to date with the queue after a drain. */
  private settleSpool(errors: MlflowError[]): void {
    if (this.queue.length === 0 && this.endConfirmed) {
      if (this.spool.exists) this.spool.remove();
      liveSpools.delete(this.spool.path);
      return;
    }
    if (this.ending || this.isOffline) this.spoolPending(errors);
    if (this.spoolStale) {
      this.writeSpool(() => {
        this.spool.rewrite(
          this.spoolHeader(),
          this.queue.filter((q) => q.spooled).map((q) => q.op),
        );
        this.spoolStale = false;
      }, errors);
    }
  }

  private announce(sent: number): void {
    if (!this.onStatus) return;
    if (this.isOffline && !this.announcedOffline) {
      this.announcedOffline = true;
      this.onStatus(
        `MLflow run ${this.label}: the server does not answer (${this.lastFailure}); ` +
          `${this.queue.length} operation(s) pending, kept in ${this.spool.path}; ` +
          'retrying in the background, training goes on',
      );
    } else if (!this.isOffline && this.announcedOffline && this.queue.length === 0) {
      this.announcedOffline = false;
      this.onStatus(
        `MLflow run ${this.label}: the server answers again; everything pending is sent` +
          (sent > 0 ? ` (${sent} operation(s) in the last flush)` : ''),
      );
    }
  }

  private takeGroup(): Queued[] {
    if (this.isolate > 0) return this.queue.slice(0, 1);
    if (!isBatchable(this.queue[0].op)) return this.queue.slice(0, 1);
    let n = 1;
    while (n < this.queue.length && n < BATCH_GROUP && isBatchable(this.queue[n].op)) n++;
    return this.queue.slice(0, n);
  }

  private remove(count: number): void {
    const done = this.queue.splice(0, count);
    if (done.some((q) => q.spooled)) this.spoolStale = true;
    if (done.some((q) => q.op.kind === 'end')) this.endConfirmed = true;
    this.isolate = Math.max(0, this.isolate - count);
  }

  private spoolHeader(): SpoolOwnerless {
    return {
      localId: this.localId,
      runId: this.createdInfo?.runId,
      experimentId: this.createdInfo?.experimentId,
      artifactUri: this.createdInfo?.artifactUri,
      trackingUri: this.client.config.trackingUri,
    };
  }

  private writeSpool(write: () => void, errors: MlflowError[] = this.carried): void {
    try {
      write();
    } catch (err) {
      errors.push(
        new MlflowError(
          `could not write the spool '${this.spool.path}' (operations stay in memory): ${String(err)}`,
        ),
      );
    }
  }

  private spoolPending(errors: MlflowError[] = this.carried): void {
    const fresh = this.queue.filter((q) => !q.spooled);
    if (fresh.length === 0) return;
    this.writeSpool(() => {
      this.spool.open(this.spoolHeader());
      this.spool.append(fresh.map((q) => q.op));
      for (const q of fresh) q.spooled = true;
    }, errors);
  }

  private async send(
    group: Queued[],
    retry: Partial<RetryPolicy>,
    force: boolean,
    deadline: number,
  ): Promise<void> {
    const ops = group.map((q) => q.op);
    const head = ops[0];
    if (head.kind === 'create') {
      await this.create(head, group[0].maybeSent === true, retry, force, deadline);
      return;
    }
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

  /**
   * Creates the run, once: a creation that may have reached the server before (a timeout, a
   * crash) is first looked for by its local id tag.
   */
  private async create(
    op: Extract<RunOperation, { kind: 'create' }>,
    maybeSent: boolean,
    retry: Partial<RetryPolicy>,
    force: boolean,
    deadline: number,
  ): Promise<void> {
    const experiment = await this.client.getOrCreateExperiment(op.experimentName, { retry });
    const tags = { ...op.tags };
    // Other runs named by their local id (e.g. the run a resumed one continues) get their
    // server id when this process knows it.
    for (const [key, value] of Object.entries(tags)) {
      if (key !== LOCAL_ID_TAG && LOCAL_ID.test(value)) tags[key] = createdRuns.get(value) ?? value;
    }
    const parentId = tags[PARENT_TAG];
    if (parentId !== undefined && LOCAL_ID.test(parentId)) {
      tags[PARENT_TAG] = await this.resolveParent(
        parentId,
        experiment.experimentId,
        retry,
        force,
        deadline,
      );
    }
    let info: RunInfo | undefined;
    if (maybeSent) {
      const found = await this.client.searchRuns(
        {
          experimentIds: [experiment.experimentId],
          filter: `tags.\`${LOCAL_ID_TAG}\` = '${this.localId}'`,
          viewType: 'ALL',
          maxResults: 1,
        },
        { retry },
      );
      const existing = found.runs[0]?.info.runId;
      if (existing !== undefined) info = (await this.client.getRun(existing, { retry })).info;
    }
    info ??= await this.client.createRun(
      {
        experimentId: experiment.experimentId,
        runName: op.runName,
        tags,
        startTime: op.startTime,
        userId: op.userId,
      },
      { retry },
    );
    this.createdInfo = info;
    createdRuns.set(this.localId, info.runId);
    this.spoolStale = true; // the header gets the server's id
    if (maybeSent)
      this.onStatus?.(`MLflow run ${this.label} is created on the server: ${info.runId}`);
  }

  /** The server id of a parent given by its local id; its creation is sent first if it is ours. */
  private async resolveParent(
    localId: string,
    experimentId: string,
    retry: Partial<RetryPolicy>,
    force: boolean,
    deadline: number,
  ): Promise<string> {
    const parent = this.parent?.localId === localId ? this.parent : undefined;
    if (parent?.refusal) throw parent.refusal;
    if (!createdRuns.has(localId) && parent) {
      const timeoutMs = Number.isFinite(deadline) ? Math.max(0, deadline - Date.now()) : undefined;
      await parent.flush({ force, timeoutMs });
    }
    const known = createdRuns.get(localId);
    if (known !== undefined) return known;
    const found = await this.client.searchRuns(
      {
        experimentIds: [experimentId],
        filter: `tags.\`${LOCAL_ID_TAG}\` = '${localId}'`,
        viewType: 'ALL',
        maxResults: 1,
      },
      { retry },
    );
    const id = found.runs[0]?.info.runId;
    if (id === undefined) {
      throw new MlflowUnavailableError(
        'create run',
        1,
        `its parent run ${localId} is not created on the server yet`,
      );
    }
    createdRuns.set(localId, id);
    return id;
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
