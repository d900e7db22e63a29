import * as tf from '@tensorflow/tfjs';
import {
  registerFastTensorflowKernels,
  unregisterFastTensorflowKernels,
} from '../../src/kernels/native/fast-kernels';

/**
 * Runs `f` with tfjs-node's own kernels, then with ours (`registerFastTensorflowKernels`); returns
 * both results and how far `callCount` (one of our kernels' counters) moved during ours.
 */
export function stockAndOurs<T extends tf.Tensor>(
  f: () => T,
  callCount: () => number,
): { stock: T; ours: T; calls: number } {
  unregisterFastTensorflowKernels();
  const stock = f();
  expect(registerFastTensorflowKernels()).toBe(true);
  const before = callCount();
  const ours = f();
  return { stock, ours, calls: callCount() - before };
}
