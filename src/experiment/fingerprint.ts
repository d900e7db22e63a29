/**
 * Content hashes that tell whether two shards analyse the same thing: the model (topology and
 * every weight's bytes) and the data (shapes and bytes of inputs and labels).
 */
import { createHash } from 'crypto';
import * as tf from '@tensorflow/tfjs';

function hashTensor(hash: ReturnType<typeof createHash>, t: tf.Tensor): void {
  hash.update(`${t.dtype}[${t.shape.join(',')}]`);
  const values = t.dataSync();
  hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/**
 * sha256 of a model's topology and weights (shapes and bytes, in order). Weight names are left
 * out: tfjs suffixes them (`_1`) when a process loads a model twice.
 */
export function modelHash(model: tf.LayersModel): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(model.toJSON(null, false)));
  for (const w of model.weights) hashTensor(hash, w.read());
  return hash.digest('hex');
}

/** sha256 of an evaluation set's inputs and labels. */
export function dataHash(xs: tf.Tensor, ys: tf.Tensor): string {
  const hash = createHash('sha256');
  hashTensor(hash, xs);
  hashTensor(hash, ys);
  return hash.digest('hex');
}

/** A short key for one sharded analysis: its fingerprint and shard count. */
export function shardKey(fingerprint: object, count: number): string {
  return createHash('sha256')
    .update(JSON.stringify({ fingerprint, count }))
    .digest('hex')
    .slice(0, 32);
}
