/**
 * The errors of the MLflow client, one class per way a call can fail.
 */

/** Base class of every error this module throws. */
export class MlflowError extends Error {
  override name = 'MlflowError';
}

/** The configuration (options or `MLFLOW_*` environment variables) is unusable. */
export class MlflowConfigError extends MlflowError {
  override name = 'MlflowConfigError';
}

/**
 * A value was refused before it was sent: it would break one of the server's rules
 * (key characters or length, value type, batch contents).
 */
export class MlflowValidationError extends MlflowError {
  override name = 'MlflowValidationError';
  constructor(
    /** What was checked, e.g. `metric key` or `params`. */
    readonly field: string,
    /** The value received. */
    readonly value: unknown,
    /** What is allowed instead. */
    readonly allowed: string,
  ) {
    super(`${field} ${describe(value)} is not valid: ${allowed}`);
  }
}

/**
 * The server answered with an error that retrying will not fix (a 4xx other than 408/429):
 * bad input, a missing resource, missing permission. `errorCode` is MLflow's code, e.g.
 * `INVALID_PARAMETER_VALUE` or `RESOURCE_DOES_NOT_EXIST`.
 */
export class MlflowRequestError extends MlflowError {
  override name = 'MlflowRequestError';
  constructor(
    /** `METHOD /path` of the request. */
    readonly endpoint: string,
    /** HTTP status. */
    readonly status: number,
    /** MLflow's `error_code`, or `HTTP_<status>` when the body had none. */
    readonly errorCode: string,
    /** The server's message. */
    readonly serverMessage: string,
  ) {
    super(`MLflow rejected ${endpoint} (${status} ${errorCode}): ${serverMessage}`);
  }
}

/**
 * The server could not be reached or kept answering 408/429/5xx, through every retry.
 */
export class MlflowUnavailableError extends MlflowError {
  override name = 'MlflowUnavailableError';
  constructor(
    /** `METHOD /path` of the request. */
    readonly endpoint: string,
    /** Requests made, the first one included. */
    readonly attempts: number,
    /** The last failure: a status line or the connection error's message. */
    readonly lastFailure: string,
    /** The wait the server asked for with its last answer's `Retry-After`, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(`MLflow server unavailable for ${endpoint} after ${attempts} attempt(s): ${lastFailure}`);
  }
}

function describe(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
