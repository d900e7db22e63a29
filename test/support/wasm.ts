import * as tf from '@tensorflow/tfjs';
import { registerWasmKernels } from '../../src/kernels/wasm';
import { useThreadedWasm } from '../../src/kernels/wasm/threads';

/**
 * Switches to the `wasm` backend with our kernels registered; returns the backend that was
 * active, to hand back to `tf.setBackend` when the test file is done.
 */
export async function switchToWasm(): Promise<string> {
  const previous = tf.getBackend();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('@tensorflow/tfjs-backend-wasm');
  useThreadedWasm();
  registerWasmKernels();
  expect(await tf.setBackend('wasm')).toBe(true);
  return previous;
}
