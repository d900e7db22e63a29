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

/** A layer call as the graph runner and the shared prefix see it. */
export interface NodeIds {
  inputs: { id: number }[];
  outputs: { id: number }[];
}

/** The nodes reading each tensor (by id), in graph order. */
export function readersOf<N extends NodeIds>(nodes: N[]): Map<number, N[]> {
  const readers = new Map<number, N[]>();
  for (const node of nodes) {
    for (const t of node.inputs) readers.set(t.id, [...(readers.get(t.id) ?? []), node]);
  }
  return readers;
}

/** A ReLU without cap, threshold or slope (a ReLU layer, or an Activation layer's 'relu'). */
export function isPlainRelu(layer: tf.layers.Layer): boolean {
  const cls = layer.getClassName();
  const config = layer.getConfig();
  return cls === 'ReLU'
    ? config.maxValue == null && !config.threshold && !config.negativeSlope
    : cls === 'Activation' && config.activation === 'relu';
}

/** Whether every input of a layer call has one shape (an Add whose gradient passes dy as is). */
export function sameInputShapes(node: NodeIds): boolean {
  const shapes = node.inputs.map((t) => JSON.stringify((t as tf.SymbolicTensor).shape));
  return shapes.every((s) => s === shapes[0]);
}
