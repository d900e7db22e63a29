import * as tf from '@tensorflow/tfjs';
import { attr, composed, input, type KernelArgs } from './kernel-io';

/** Most axes we hand to one broadcasting multiplication (the wasm backend's broadcast limit). */
const MAX_BROADCAST_RANK = 6;

/**
 * The shapes of a tile written as one broadcast: `x` viewed as `[1, d0, 1, d1, …]` times ones of
 * `[r0, 1, r1, 1, …]`, with unit repetitions dropped and neighbouring untiled axes merged.
 * `null` when that needs more axes than one broadcast takes.
 */
export function tileAsBroadcast(
  shape: number[],
  reps: number[],
): { xShape: number[]; onesShape: number[] } | null {
  const xShape: number[] = [];
  const onesShape: number[] = [];
  for (let axis = 0; axis < shape.length; axis++) {
    const rep = reps[axis];
    if (rep !== 1) {
      xShape.push(1, shape[axis]);
      onesShape.push(rep, 1);
    } else if (xShape.length > 0 && onesShape[onesShape.length - 1] === 1) {
      xShape[xShape.length - 1] *= shape[axis];
    } else {
      xShape.push(shape[axis]);
      onesShape.push(1);
    }
  }
  return xShape.length <= MAX_BROADCAST_RANK ? { xShape, onesShape } : null;
}

/**
 * Builds the `Tile` replacement: a tile of float32 or int32 values is one broadcasting
 * multiplication by ones (exact), much faster on wasm than its `Tile` loop; other dtypes and
 * tiles of too many axes go to `fallback`, the original kernel.
 */
export function makeTile(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const x = args.inputs.x;
    const reps = attr<number[]>(args, 'reps');
    const plan =
      x !== undefined && (x.dtype === 'float32' || x.dtype === 'int32')
        ? tileAsBroadcast(x.shape, reps)
        : null;
    if (plan === null) {
      if (fallback === undefined) throw new Error(`Tile of ${x?.dtype} is not supported on wasm`);
      return fallback(params);
    }
    return composed(args, () => {
      const xt = input(args, 'x');
      const ones = tf.ones(plan.onesShape, xt.dtype);
      const tiled = tf.mul(tf.reshape(xt, plan.xShape), ones);
      return tf.reshape(
        tiled,
        xt.shape.map((d, i) => d * reps[i]),
      );
    });
  };
}
