import * as tf from '@tensorflow/tfjs';

/**
 * `t` repeated `count` times along the batch: the batched sweep's layout, in which block b (rows
 * `[b·n, (b+1)·n)`) belongs to filtered model b.
 */
export function copies(t: tf.Tensor, count: number): tf.Tensor {
  return tf.tile(t, [count, ...t.shape.slice(1).map(() => 1)]);
}

/** Values per example of a tensor of `shape` (batch first; an unknown dimension counts 1). */
export function perExample(shape: readonly (number | null)[]): number {
  return shape.slice(1).reduce<number>((p, d) => p * (d ?? 1), 1);
}

/** A layer config's size or stride, given as one number or as [height, width]. */
export function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number];
}
