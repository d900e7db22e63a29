/**
 * `runs/log-batch` contents: checked against the server's rules before sending, and split into
 * requests within its limits ({@link MLFLOW_LIMITS}), in order, nothing dropped.
 */
import { MlflowValidationError } from './errors';
import { KEY_RULE, keyProblem } from './keys';
import { BATCH_BODY_BUDGET, MLFLOW_LIMITS } from './limits';
import type { Param, RunTag } from './types';
import { encodeMetricValue, type WireNumber } from './values';

/** A metric to log; `step` defaults to 0 and `timestamp` to now. */
export interface MetricInput {
  key: string;
  value: number;
  step?: number;
  timestamp?: number;
}

/** A param value; numbers and booleans are logged as their string form. */
export type ParamValue = string | number | boolean;

/** What one `logBatch` call logs. */
export interface BatchInput {
  metrics?: readonly MetricInput[];
  params?: Readonly<Record<string, ParamValue>> | readonly Param[];
  tags?: Readonly<Record<string, string>> | readonly RunTag[];
}

/** A metric as sent. */
export interface WireMetric {
  key: string;
  value: WireNumber;
  timestamp: number;
  step: number;
}

/** One `log-batch` request body, without the run id. */
export interface WireBatch {
  metrics: WireMetric[];
  params: Param[];
  tags: RunTag[];
}

function entries<V>(input: Readonly<Record<string, V>> | readonly { key: string; value: V }[]) {
  return Array.isArray(input)
    ? (input as readonly { key: string; value: V }[]).map((e) => ({ key: e.key, value: e.value }))
    : Object.entries(input as Record<string, V>).map(([key, value]) => ({ key, value }));
}

function checkKey(kind: string, key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined)
    throw new MlflowValidationError(`${kind} key`, key, `${problem}; ${KEY_RULE}`);
}

function isLong(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}

/** Checks one metric and gives its wire form. */
export function toWireMetric(metric: MetricInput, now: number = Date.now()): WireMetric {
  checkKey('metric', metric.key);
  if (typeof metric.value !== 'number') {
    throw new MlflowValidationError(
      `metric '${metric.key}' value`,
      metric.value,
      'a number (NaN and ±Infinity are allowed)',
    );
  }
  const step = metric.step ?? 0;
  if (!isLong(step)) {
    throw new MlflowValidationError(`metric '${metric.key}' step`, step, 'an integer');
  }
  const timestamp = metric.timestamp ?? now;
  if (!isLong(timestamp) || timestamp < 0) {
    throw new MlflowValidationError(
      `metric '${metric.key}' timestamp`,
      timestamp,
      'a non-negative integer (ms since the epoch)',
    );
  }
  return { key: metric.key, value: encodeMetricValue(metric.value), timestamp, step };
}

/**
 * Checks a batch and puts it in wire form: keys valid, values typed, params and tags
 * de-duplicated (a param logged twice must have one value; of a tag logged twice, the last
 * value wins). Value lengths are not checked here: see `MlflowClient.logBatch`.
 * @throws MlflowValidationError for the first entry at fault.
 */
export function normalizeBatch(input: BatchInput, now: number = Date.now()): WireBatch {
  const metrics = (input.metrics ?? []).map((m) => toWireMetric(m, now));

  const params = new Map<string, string>();
  for (const { key, value } of entries<ParamValue>(input.params ?? [])) {
    checkKey('param', key);
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      throw new MlflowValidationError(`param '${key}' value`, value, 'a string, number or boolean');
    }
    const text = String(value);
    const earlier = params.get(key);
    if (earlier !== undefined && earlier !== text) {
      throw new MlflowValidationError(
        `param '${key}' value`,
        text,
        `one value per run; it is also given as ${JSON.stringify(earlier.slice(0, 80))}`,
      );
    }
    params.set(key, text);
  }

  const tags = new Map<string, string>();
  for (const { key, value } of entries<string>(input.tags ?? [])) {
    checkKey('tag', key);
    if (typeof value !== 'string') {
      throw new MlflowValidationError(`tag '${key}' value`, value, 'a string');
    }
    tags.delete(key);
    tags.set(key, value);
  }

  return {
    metrics,
    params: [...params].map(([key, value]) => ({ key, value })),
    tags: [...tags].map(([key, value]) => ({ key, value })),
  };
}

const ENVELOPE_BYTES = 200;

function size(entity: unknown): number {
  return Buffer.byteLength(JSON.stringify(entity), 'utf8') + 1;
}

/**
 * Splits a batch into requests that each respect the server's limits: ≤ 1000 metrics,
 * ≤ 100 params, ≤ 100 tags, ≤ 1000 entities and a body under {@link BATCH_BODY_BUDGET} bytes.
 * Params come first, then tags, then metrics, each in the order given, so metrics arrive in
 * order. An empty batch gives no request.
 */
export function splitBatch(batch: WireBatch): WireBatch[] {
  const out: WireBatch[] = [];
  let current: WireBatch = { metrics: [], params: [], tags: [] };
  let bytes = ENVELOPE_BYTES;
  const count = () => current.metrics.length + current.params.length + current.tags.length;
  const add = <K extends keyof WireBatch>(kind: K, entity: WireBatch[K][number], limit: number) => {
    const s = size(entity);
    if (
      current[kind].length >= limit ||
      count() >= MLFLOW_LIMITS.entitiesPerBatch ||
      (count() > 0 && bytes + s > BATCH_BODY_BUDGET)
    ) {
      out.push(current);
      current = { metrics: [], params: [], tags: [] };
      bytes = ENVELOPE_BYTES;
    }
    (current[kind] as WireBatch[K][number][]).push(entity);
    bytes += s;
  };
  for (const p of batch.params) add('params', p, MLFLOW_LIMITS.paramsPerBatch);
  for (const t of batch.tags) add('tags', t, MLFLOW_LIMITS.tagsPerBatch);
  for (const m of batch.metrics) add('metrics', m, MLFLOW_LIMITS.metricsPerBatch);
  if (count() > 0) out.push(current);
  return out;
}
