/**
 * Metric, param and tag keys as the tracking server accepts them
 * (`mlflow/utils/validation.py`): at most 250 characters of letters, digits, `_ - . / : `
 * and space, and a key must stay the same under POSIX path normalisation (no `//`, no leading or
 * trailing `/`, no `.` or `..` segment, not empty).
 */
import { MLFLOW_LIMITS } from './limits';

/** Characters MLflow allows in keys (`[/\w.\- :]`, `\w` as Python reads it: Unicode-aware). */
const ALLOWED = /^[/\p{L}\p{N}_.\- :]*$/u;
const DISALLOWED_CHAR = /[^/\p{L}\p{N}_.\- :]/gu;

/** The characters allowed in keys, in words, for error messages. */
export const KEY_RULE =
  `at most ${MLFLOW_LIMITS.keyLength} characters of letters, digits, '_', '-', '.', '/', ':' ` +
  `and space, without '//', a leading or trailing '/', or a '.' or '..' segment`;

/** Says why `key` would be rejected by the server, or `undefined` if it is valid. */
export function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string') return 'it is not a string';
  if (key.length === 0) return 'it is empty';
  if (key.length > MLFLOW_LIMITS.keyLength) {
    return `it has ${key.length} characters (at most ${MLFLOW_LIMITS.keyLength})`;
  }
  if (!ALLOWED.test(key)) {
    const bad = [...new Set(key.match(DISALLOWED_CHAR) ?? [])].map((c) => JSON.stringify(c));
    return `it contains ${bad.join(', ')}`;
  }
  if (key.startsWith('/') || key.endsWith('/') || key.includes('//')) {
    return "it would change under path normalisation ('//' or a leading or trailing '/')";
  }
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) {
    return "it has a '.' or '..' path segment";
  }
  return undefined;
}

/** FNV-1a, 32 bits, as 8 hex digits: a short stable suffix that keeps shortened keys apart. */
export function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * Turns any string into a valid key, changing only what must change: disallowed characters
 * become `_`, repeated slashes one, leading/trailing slashes go, `.`/`..` segments become
 * `_`/`__`, and a key over 250 characters is cut and ends in `-` plus a hash of the original.
 * A valid key comes back unchanged.
 */
export function sanitizeKey(raw: string): string {
  if (keyProblem(raw) === undefined) return raw;
  let key = String(raw)
    .replace(DISALLOWED_CHAR, '_')
    .replace(/\/{2,}/g, '/')
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .map((segment) => (segment === '.' ? '_' : segment === '..' ? '__' : segment))
    .join('/');
  if (key.length === 0) key = '_';
  if (key.length > MLFLOW_LIMITS.keyLength) {
    const suffix = `-${shortHash(String(raw))}`;
    key = key.slice(0, MLFLOW_LIMITS.keyLength - suffix.length).replace(/\/+$/, '') + suffix;
  }
  return key;
}

/**
 * An artifact path (relative to the run's artifact root) as the artifact proxy accepts it:
 * `/`-separated, no empty, `.` or `..` segment, no backslash.
 * @returns the problem, or `undefined` if it is valid.
 */
export function artifactPathProblem(path: string): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'it is empty';
  if (path.includes('\\')) return "it contains '\\'";
  if (path.includes('\0')) return 'it contains a NUL character';
  const segments = path.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    return "it has an empty, '.' or '..' segment (or a leading/trailing '/')";
  }
  return undefined;
}
