/**
 * Awaits `work` (a fit, or one of a callback's own hooks); if it rejects, calls `restore` before
 * rethrowing. tfjs skips `onTrainEnd` when `fit` throws, so callbacks that change `trainable`
 * flags restore them through this.
 */
export async function restoreOnFailure<T>(work: Promise<T>, restore: () => void): Promise<T> {
  try {
    return await work;
  } catch (err) {
    restore();
    throw err;
  }
}
