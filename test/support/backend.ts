import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/kernels/backend';

// Tests use the cpu backend on purpose (as a reference): tfjs' advice to install tfjs-node, printed
// at a cpu backend's first use under Node, is noise here. PROD turns off tfjs' own warnings and
// nothing else (IS_TEST would also turn on tfjs' kernel leak checks, which misfire on tfjs-node).
tf.env().set('PROD', true);

beforeAll(async () => {
  await initBackend({ log: () => undefined });
});
