import * as tf from '@tensorflow/tfjs';
import type { FilterId } from './types';

const ALIASES = {
  h_a: 'highpass',
  h_b: 'lowpass',
  h_c: 'pulse',
} as const satisfies Record<string, FilterId>;

/** The paper's names of the filters: h_a, h_b, h_c. */
export type FilterAlias = keyof typeof ALIASES;

/** The paper's names of the filters (h_a, h_b, h_c), accepted as aliases. */
export const FILTER_ALIASES: Readonly<Record<string, FilterId>> = ALIASES;

/** The aliases' names, in order. */
export const FILTER_ALIAS_NAMES = Object.keys(ALIASES) as FilterAlias[];

/**
 * The values a filter step removes: `lo ≤ v ≤ hi`, or `lo ≤ v < hi` where `hiOpen` (bounds may be
 * infinite). Every step of every filter removes such an interval of values.
 */
export interface RemovedInterval {
  lo: number;
  hi: number;
  hiOpen: boolean;
}

/** Where step k of a filter cuts, and what it removes (docs/method.md §2). */
export interface FilterStep {
  /** Threshold α_k. */
  alpha: number;
  /** Filtering progress u_k = k/(K−1). */
  progress: number;
  /** The removed values as an interval. */
  interval: RemovedInterval;
  /** True where element i is removed (set to 0). */
  removes(value: number): boolean;
}

/** Whether `interval` holds `value`: whether the step removes an element of that value. */
export function intervalHolds({ lo, hi, hiOpen }: RemovedInterval, value: number): boolean {
  return value >= lo && (hiOpen ? value < hi : value <= hi);
}

function stepOf(alpha: number, progress: number, interval: RemovedInterval): FilterStep {
  return { alpha, progress, interval, removes: (v) => intervalHolds(interval, v) };
}

function checkStep(step: number, steps: number): void {
  if (!Number.isInteger(steps) || steps < 3) {
    throw new Error(`steps must be an integer ≥ 3; got ${steps}`);
  }
  if (!Number.isInteger(step) || step < 0 || step >= steps) {
    throw new Error(`step must be an integer in [0, ${steps - 1}]; got ${step}`);
  }
}

/**
 * The threshold and removal rule of step `step` of `steps` for a tensor whose values span
 * [min, max]. Comparisons are made in float64 against the float32 values, so ties at the
 * threshold are decided exactly; the last step of the step filters uses α = max (highpass) or
 * α = min (lowpass) exactly, so it always removes the whole tensor.
 */
export function filterStep(
  filter: FilterId,
  step: number,
  steps: number,
  min: number,
  max: number,
): FilterStep {
  checkStep(step, steps);
  const progress = step / (steps - 1);
  const range = max - min;
  switch (filter) {
    case 'highpass': {
      const alpha = step === steps - 1 ? max : min + progress * range;
      return stepOf(alpha, progress, { lo: -Infinity, hi: alpha, hiOpen: false });
    }
    case 'lowpass': {
      const alpha = step === steps - 1 ? min : max - progress * range;
      return stepOf(alpha, progress, { lo: alpha, hi: Infinity, hiOpen: false });
    }
    case 'pulse': {
      const alpha = step === steps - 1 ? max : min + progress * range;
      const half = range / steps / 2;
      return stepOf(alpha, progress, { lo: alpha - half, hi: alpha + half, hiOpen: true });
    }
    default:
      throw new Error(`unknown filter '${String(filter)}'; use highpass, lowpass or pulse`);
  }
}

/** Min and max of an array, rejecting NaN and ±Infinity. */
export function valueRange(
  values: ArrayLike<number>,
  what = 'tensor',
): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      throw new Error(`${what} has a non-finite value (${v}) at flat index ${i}`);
    }
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (values.length === 0) throw new Error(`${what} is empty`);
  return { min, max };
}

/**
 * Applies step k of a filter to an array of values: returns the filtered copy and the number
 * of elements removed.
 */
export function filterValues(
  values: Float32Array,
  filter: FilterId,
  step: number,
  steps: number,
  range: { min: number; max: number } = valueRange(values),
): { filtered: Float32Array; removed: number; alpha: number; mask: Uint8Array } {
  const rule = filterStep(filter, step, steps, range.min, range.max);
  const filtered = new Float32Array(values);
  const mask = new Uint8Array(values.length);
  let removed = 0;
  for (let i = 0; i < values.length; i++) {
    if (rule.removes(values[i])) {
      filtered[i] = 0;
      mask[i] = 1;
      removed++;
    }
  }
  return { filtered, removed, alpha: rule.alpha, mask };
}

/**
 * Synaptic filter step `step` (k) of `steps` (K) applied to a tensor (docs/method.md §2): removed
 * elements become exactly 0, the others are untouched. m and M are taken from the tensor.
 * The caller owns (and disposes) `filtered`.
 */
export function applyFilter(
  tensor: tf.Tensor,
  filter: FilterId,
  step: number,
  steps: number,
): { filtered: tf.Tensor; removed: number; alpha: number } {
  const resolved = FILTER_ALIASES[filter] ?? filter;
  if (tensor.dtype !== 'float32') {
    throw new Error(`applyFilter needs a float32 tensor; got ${tensor.dtype}`);
  }
  const values = tensor.dataSync() as Float32Array;
  const { filtered, removed, alpha } = filterValues(values, resolved, step, steps);
  return { filtered: tf.tensor(filtered, tensor.shape, 'float32'), removed, alpha };
}
