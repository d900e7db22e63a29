/**
 * HTTP to the tracking server: JSON and byte requests with retries, exponential backoff and
 * `Retry-After`, and MLflow's error bodies turned into {@link MlflowRequestError}.
 */
import { authorizationHeader, type MlflowConfig } from './config';
import { MlflowRequestError, MlflowUnavailableError } from './errors';

/** When and how long to retry a request. */
export interface RetryPolicy {
  /** Retries after the first attempt. Default 5. */
  maxRetries: number;
  /** Wait before the first retry, in ms; doubled (times `backoffFactor`) each retry. Default 500. */
  backoffMs: number;
  /** Growth of the wait per retry. Default 2. */
  backoffFactor: number;
  /** Longest wait between attempts, `Retry-After` included, in ms. Default 10 000. */
  maxBackoffMs: number;
  /** Random extra wait, up to this many ms, so that clients do not retry in step. Default 100. */
  jitterMs: number;
  /** Time limit of one attempt, in ms. Default 30 000. */
  timeoutMs: number;
  /**
   * Give up at this time (ms since the epoch): no attempt starts after it and none runs past it.
   * Default: none.
   */
  deadline?: number;
}

/** Defaults of {@link RetryPolicy}: about 15 s of retrying before giving up. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxRetries: 5,
  backoffMs: 500,
  backoffFactor: 2,
  maxBackoffMs: 10_000,
  jitterMs: 100,
  timeoutMs: 30_000,
};

/** Statuses retried, as MLflow's Python client does. Connection errors are retried too. */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** One request. */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT';
  /** Path below the tracking URI, starting with `/`. */
  path: string;
  query?: Record<string, string | number | readonly string[] | undefined>;
  /** A JSON body (serialised here). */
  json?: unknown;
  /** A raw body. */
  body?: Uint8Array;
  contentType?: string;
  retry?: Partial<RetryPolicy>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

interface ErrorLike {
  message: string;
  code?: string;
  cause?: unknown;
}

// Duck-typed: errors from `fetch` may come from another realm (e.g. under Jest).
function isErrorLike(value: unknown): value is ErrorLike {
  return (
    typeof value === 'object' && value !== null && typeof (value as ErrorLike).message === 'string'
  );
}

function failureText(err: unknown): string {
  if (!isErrorLike(err)) return String(err);
  const cause = err.cause;
  const causeText = isErrorLike(cause) ? (cause.code ?? cause.message) : undefined;
  return causeText ? `${err.message} (${causeText})` : err.message;
}

/** Sends requests to one tracking server. */
export class HttpTransport {
  private readonly authorization?: string;

  constructor(
    private readonly config: MlflowConfig,
    private readonly retry: Readonly<RetryPolicy> = DEFAULT_RETRY_POLICY,
  ) {
    this.authorization = authorizationHeader(config.auth);
  }

  /** The URL of `path` on this server. */
  url(path: string, query?: HttpRequest['query']): string {
    const url = new URL(this.config.trackingUri + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, v);
      else url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  /** Sends a request, retrying as {@link RetryPolicy} says, and returns the response body. */
  async send(request: HttpRequest): Promise<Uint8Array> {
    const policy: RetryPolicy = { ...this.retry, ...request.retry };
    const endpoint = `${request.method} ${request.path}`;
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.authorization) headers.Authorization = this.authorization;
    let body: Uint8Array | string | undefined;
    if (request.json !== undefined) {
      body = JSON.stringify(request.json);
      headers['Content-Type'] = 'application/json';
    } else if (request.body !== undefined) {
      body = request.body;
      headers['Content-Type'] = request.contentType ?? 'application/octet-stream';
    }
    const url = this.url(request.path, request.query);

    let lastFailure = '';
    for (let attempt = 0; ; attempt++) {
      let wait: number | undefined;
      const left = (policy.deadline ?? Infinity) - Date.now();
      // Outside the try: a bad time limit is our error, not the network's.
      const signal = AbortSignal.timeout(Math.max(1, Math.ceil(Math.min(policy.timeoutMs, left))));
      try {
        const response = await fetch(url, { method: request.method, headers, body, signal });
        const bytes = new Uint8Array(await response.arrayBuffer());
        if (response.ok) return bytes;
        if (!RETRY_STATUSES.has(response.status)) {
          throw requestError(endpoint, response.status, bytes);
        }
        lastFailure = `HTTP ${response.status}${errorSummary(bytes)}`;
        wait = retryAfterMs(response.headers.get('retry-after'));
      } catch (err) {
        if (err instanceof MlflowRequestError) throw err;
        lastFailure = failureText(err);
      }
      const backoff = policy.backoffMs * policy.backoffFactor ** attempt;
      const pause =
        Math.min(policy.maxBackoffMs, wait ?? backoff) + Math.random() * policy.jitterMs;
      const pastDeadline = Date.now() + pause >= (policy.deadline ?? Infinity);
      if (attempt >= policy.maxRetries || pastDeadline) {
        throw new MlflowUnavailableError(endpoint, attempt + 1, lastFailure, wait);
      }
      await sleep(pause);
    }
  }

  /** Sends a request and parses its JSON answer (`{}` for an empty body). */
  async json<T>(request: HttpRequest): Promise<T> {
    const bytes = await this.send(request);
    const text = Buffer.from(bytes).toString('utf8');
    return (text.trim() === '' ? {} : JSON.parse(text)) as T;
  }
}

function parseErrorBody(bytes: Uint8Array): { code?: string; message?: string } {
  const text = Buffer.from(bytes).toString('utf8');
  try {
    const body = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    return {
      code: typeof body.error_code === 'string' ? body.error_code : undefined,
      message: typeof body.message === 'string' ? body.message : text,
    };
  } catch {
    return { message: text.slice(0, 500) };
  }
}

function errorSummary(bytes: Uint8Array): string {
  const { code, message } = parseErrorBody(bytes);
  const text = [code, message?.slice(0, 200)].filter(Boolean).join(': ');
  return text ? ` ${text}` : '';
}

function requestError(endpoint: string, status: number, bytes: Uint8Array): MlflowRequestError {
  const { code, message } = parseErrorBody(bytes);
  return new MlflowRequestError(endpoint, status, code ?? `HTTP_${status}`, message ?? '');
}
