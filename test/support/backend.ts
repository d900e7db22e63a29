import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/kernels/backend';

/**
 * tfjs' cpu backend advises installing tfjs-node at its first use under Node. Tests use cpu on
 * purpose (as a reference), so that first use happens here, with tfjs' warnings off for it only.
 */
function quietCpuGreeting(): void {
  const cpu = tf.findBackend('cpu');
  if (!cpu) return;
  const prod = tf.env().getBool('PROD');
  tf.env().set('PROD', true);
  try {
    cpu.disposeData(cpu.write(new Float32Array(1), [1], 'float32'));
  } finally {
    tf.env().set('PROD', prod);
  }
}

quietCpuGreeting();

beforeAll(async () => {
  await initBackend({ log: () => undefined });
});
