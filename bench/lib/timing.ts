/** How a measurement was taken and what it found, in seconds. */
export interface Timing {
  /** Median of the timed repeats. */
  median: number;
  /** Every timed repeat, in order. */
  samples: number[];
  /** Untimed runs before the timed ones. */
  warmup: number;
}

/** Options of {@link timeIt}. */
export interface TimeItOptions {
  /** Untimed runs first (compilation, allocation, caches); default 1. */
  warmup?: number;
  /** Timed runs; the median is reported; default 3. */
  repeats?: number;
}

/** The median of a non-empty list. */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Times an (async) function: `warmup` untimed runs, then `repeats` timed ones; reports the median.
 * The function must finish its work before it resolves (read results back, e.g. with `data()`).
 */
export async function timeIt(
  fn: () => unknown | Promise<unknown>,
  options: TimeItOptions = {},
): Promise<Timing> {
  const warmup = options.warmup ?? 1;
  const repeats = options.repeats ?? 3;
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`warmup must be ≥ 0; got ${warmup}`);
  if (!Number.isInteger(repeats) || repeats < 1) {
    throw new Error(`repeats must be ≥ 1; got ${repeats}`);
  }
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return { median: median(samples), samples, warmup };
}
