import * as tf from '@tensorflow/tfjs';

/** Epoch/batch logs with every value resolved to a plain number. */
export type NumericLogs = Record<string, number>;

/**
 * Resolves the values of tfjs callback logs to numbers. tfjs may pass `Scalar`s to
 * callbacks; this reads them (without disposing: the training loop owns them).
 */
export async function resolveLogs(logs: tf.Logs | undefined): Promise<NumericLogs> {
  const out: NumericLogs = {};
  if (!logs) return out;
  for (const [key, value] of Object.entries(logs as Record<string, unknown>)) {
    if (typeof value === 'number') {
      out[key] = value;
    } else if (value instanceof tf.Tensor) {
      out[key] = (await value.data())[0];
    }
  }
  return out;
}
