/**
 * Connection settings, read as MLflow's own clients read them: explicit options first, then the
 * `MLFLOW_*` environment variables.
 */
import { MlflowConfigError } from './errors';
import { MLFLOW_LIMITS } from './limits';

/** How to reach a tracking server. Every field falls back to an environment variable. */
export interface MlflowConnectionOptions {
  /**
   * The tracking server, `http(s)://host[:port][/prefix]`.
   * Default: `MLFLOW_TRACKING_URI`. Required one way or the other: this client talks to a
   * server (start one with `mlflow server`), not to a local `mlruns` folder. Credentials in the
   * URI (`http://user:pass@host`) are sent as HTTP basic auth when `username`/`password` are not
   * set otherwise, and are never printed: messages show the URI without them.
   */
  trackingUri?: string;
  /** HTTP basic-auth user. Default: `MLFLOW_TRACKING_USERNAME`. Needs `password` too. */
  username?: string;
  /** HTTP basic-auth password. Default: `MLFLOW_TRACKING_PASSWORD`. */
  password?: string;
  /** Bearer token, used when no username/password is set. Default: `MLFLOW_TRACKING_TOKEN`. */
  token?: string;
  /** Experiment that runs go to. Default: `MLFLOW_EXPERIMENT_NAME`, else `Default`. */
  experimentName?: string;
}

/** Credentials sent with every request. */
export type MlflowAuth =
  { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };

/** Resolved connection settings. */
export interface MlflowConfig {
  /** Base URL without a trailing slash. */
  readonly trackingUri: string;
  readonly auth?: MlflowAuth;
  readonly experimentName: string;
}

/** The environment variables read, as MLflow names them. */
export const MLFLOW_ENV = {
  trackingUri: 'MLFLOW_TRACKING_URI',
  username: 'MLFLOW_TRACKING_USERNAME',
  password: 'MLFLOW_TRACKING_PASSWORD',
  token: 'MLFLOW_TRACKING_TOKEN',
  experimentName: 'MLFLOW_EXPERIMENT_NAME',
} as const;

/** MLflow's default experiment, id 0, which every store has. */
export const DEFAULT_EXPERIMENT_NAME = 'Default';

function pick(value: string | undefined, env: NodeJS.ProcessEnv, name: string): string | undefined {
  if (value !== undefined) return value;
  const fromEnv = env[name];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

/**
 * Resolves connection options against the environment.
 * @throws MlflowConfigError naming the option or variable at fault.
 */
export function resolveMlflowConfig(
  options: MlflowConnectionOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): MlflowConfig {
  const uri = pick(options.trackingUri, env, MLFLOW_ENV.trackingUri);
  if (uri === undefined) {
    throw new MlflowConfigError(
      `no MLflow tracking server: pass trackingUri or set ${MLFLOW_ENV.trackingUri} ` +
        `(e.g. http://127.0.0.1:5000 for a server started with \`mlflow server\`)`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    throw new MlflowConfigError(
      `trackingUri/${MLFLOW_ENV.trackingUri} '${redactUri(uri)}' is not a URL; expected http(s)://host[:port]`,
    );
  }
  const shown = redactUri(uri);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new MlflowConfigError(
      `trackingUri/${MLFLOW_ENV.trackingUri} '${shown}' uses '${parsed.protocol}'; this client ` +
        `talks to a tracking server over http: or https: (start one with \`mlflow server\`)`,
    );
  }
  if (parsed.search || parsed.hash) {
    throw new MlflowConfigError(
      `trackingUri/${MLFLOW_ENV.trackingUri} '${shown}' must not have a query or fragment`,
    );
  }
  // `origin` leaves the user info out: credentials never travel in (or print with) the URI.
  const trackingUri = `${parsed.origin}${parsed.pathname}`.replace(/\/+$/, '');
  const uriUser = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
  const uriPassword = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);

  const explicitUser = pick(options.username, env, MLFLOW_ENV.username);
  const explicitPassword = pick(options.password, env, MLFLOW_ENV.password);
  const fromUri = explicitUser === undefined && explicitPassword === undefined;
  const username = fromUri ? uriUser : explicitUser;
  const password = fromUri
    ? uriUser === undefined
      ? undefined
      : (uriPassword ?? '')
    : explicitPassword;
  const token = pick(options.token, env, MLFLOW_ENV.token);
  let auth: MlflowAuth | undefined;
  if (username !== undefined || password !== undefined) {
    if (username === undefined || password === undefined) {
      throw new MlflowConfigError(
        `basic auth needs both username (${MLFLOW_ENV.username}) and password ` +
          `(${MLFLOW_ENV.password}); only ${username === undefined ? 'password' : 'username'} is set`,
      );
    }
    auth = { kind: 'basic', username, password };
  } else if (token !== undefined) {
    auth = { kind: 'bearer', token };
  }

  const experimentName =
    pick(options.experimentName, env, MLFLOW_ENV.experimentName) ?? DEFAULT_EXPERIMENT_NAME;
  if (experimentName.trim() === '' || experimentName.length > MLFLOW_LIMITS.experimentNameLength) {
    throw new MlflowConfigError(
      `experimentName/${MLFLOW_ENV.experimentName} '${experimentName.slice(0, 80)}' must be ` +
        `1 to ${MLFLOW_LIMITS.experimentNameLength} characters`,
    );
  }
  return { trackingUri, auth, experimentName };
}

/**
 * A URI fit to print: user info (`user:password@`) replaced by `***@`. Text that is not a URL is
 * returned with anything between `//` and `@` masked.
 */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.username === '' && url.password === '') return uri;
    url.username = '***';
    url.password = '';
    return url.toString().replace(/\/$/, uri.endsWith('/') ? '/' : '');
  } catch {
    return uri.replace(/\/\/[^/@\s]*@/, '//***@');
  }
}

/** The `Authorization` header for {@link MlflowAuth}, if any. */
export function authorizationHeader(auth: MlflowAuth | undefined): string | undefined {
  if (!auth) return undefined;
  if (auth.kind === 'basic') {
    return `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
  }
  return `Bearer ${auth.token}`;
}
