/**
 * Metric values on the wire: JSON has no NaN or ±Infinity, and the server reads the strings
 * `"NaN"`, `"Infinity"`, `"-Infinity"` instead (`JSON.stringify(NaN)` gives `null`, which it
 * rejects).
 */

/** A metric value as sent to (and read back from) the server. */
export type WireNumber = number | 'NaN' | 'Infinity' | '-Infinity';

/** Encodes a metric value for the wire. */
export function encodeMetricValue(value: number): WireNumber {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

/** Decodes a metric value read from the server. */
export function decodeMetricValue(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value === 'NaN') return NaN;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  return Number(value);
}
