/**
 * The paper's four architectures train on `wasm` with our kernels: one Adam step each at a small
 * input size and width (finite loss, weights change, no tensor left behind), and their weight
 * gradients agree with the `cpu` backend's.
 *
 * The gradients are compared in inference mode (as FGSM runs): in training mode dropout draws
 * different masks on each backend, and batch norm over a 2-example batch at 1×1 spatial size
 * (ResNet-50's last stage at 32×32 input) is so ill-conditioned that cpu and TensorFlow's native
 * backend disagree with each other (cosine ≈ 0) just as much.
 */
import * as tf from '@tensorflow/tfjs';
import { buildModel, type ModelName } from '../src/models';
import { smallCnn } from '../src/models/small-cnn';
import { simdSettings } from '../src/kernels/wasm/simd';
import { switchToWasm } from './support/wasm';

const INPUT: [number, number, number] = [32, 32, 3];
const CLASSES = 10;
const BATCH = 2;
const MODELS: ModelName[] = ['resnet18', 'resnet50', 'squeezenet1_1', 'shufflenet_v2_x1_0'];

let previousBackend = '';

beforeAll(async () => {
  previousBackend = await switchToWasm();
});

afterAll(async () => {
  await tf.setBackend(previousBackend);
});

/** A deterministic batch: inputs in [-1, 1), one label per example. */
function batchValues(batch = BATCH): { xs: Float32Array; ys: Float32Array } {
  const xs = new Float32Array(batch * INPUT[0] * INPUT[1] * INPUT[2]);
  let s = 12345;
  for (let i = 0; i < xs.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    xs[i] = s / 2 ** 31 - 1;
  }
  const ys = new Float32Array(batch * CLASSES);
  for (let b = 0; b < batch; b++) ys[b * CLASSES + ((b * 3) % CLASSES)] = 1;
  return { xs, ys };
}

/**
 * Loss gradients of every trainable weight for one example in inference mode, on the current
 * backend, as flat host arrays.
 */
function lossGradients(model: tf.LayersModel): Float32Array[] {
  const { xs, ys } = batchValues(1);
  return tf.tidy(() => {
    const x = tf.tensor(xs, [1, ...INPUT]);
    const y = tf.tensor(ys, [1, CLASSES]);
    const { grads } = tf.variableGrads(() =>
      tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: false }) as tf.Tensor),
    );
    return model.trainableWeights.map((w) => grads[w.name]?.dataSync() as Float32Array);
  });
}

/** Cosine similarity of two gradients (1 when both are zero). */
function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  a.forEach((v, i) => {
    dot += v * b[i];
    na += v * v;
    nb += b[i] * b[i];
  });
  return na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb);
}

describe.each(MODELS)('%s on wasm', (name) => {
  it('trains one Adam step without leaking tensors', async () => {
    const model = buildModel(name, { inputShape: INPUT, classes: CLASSES, width: 0.25, seed: 3 });
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const { xs: xv, ys: yv } = batchValues();
    const xs = tf.tensor(xv, [BATCH, ...INPUT]);
    const ys = tf.tensor(yv, [BATCH, CLASSES]);
    const before = model.getWeights().map((w) => w.dataSync().slice());
    const first = (await model.trainOnBatch(xs, ys)) as number;
    const tensors = tf.memory().numTensors;
    const second = (await model.trainOnBatch(xs, ys)) as number;
    expect(tf.memory().numTensors).toBe(tensors);
    expect(Number.isFinite(first) && Number.isFinite(second)).toBe(true);
    const changed = model
      .getWeights()
      .filter((w, i) => w.dataSync().some((v, j) => v !== before[i][j])).length;
    expect(changed).toBeGreaterThan(model.trainableWeights.length / 2);
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it('computes weight gradients like cpu', async () => {
    const model = buildModel(name, { inputShape: INPUT, classes: CLASSES, width: 0.25, seed: 3 });
    const weights = model.getWeights().map((w) => ({ values: w.dataSync(), shape: w.shape }));
    const onWasm = lossGradients(model);
    model.dispose();
    await tf.setBackend('cpu');
    try {
      const cpuModel = buildModel(name, {
        inputShape: INPUT,
        classes: CLASSES,
        width: 0.25,
        seed: 3,
      });
      const copies = weights.map((w) => tf.tensor(w.values, w.shape));
      cpuModel.setWeights(copies);
      tf.dispose(copies);
      const onCpu = lossGradients(cpuModel);
      cpuModel.dispose();
      expect(onWasm.every((g) => g !== undefined)).toBe(true);
      const worst = Math.min(...onWasm.map((g, i) => cosine(g, onCpu[i])));
      expect(worst).toBeGreaterThanOrEqual(0.9999);
    } finally {
      await tf.setBackend('wasm');
    }
  });
});

describe('small CNN on wasm', () => {
  it('trains epochs with numTensors, wasm data and wasm memory flat (fused convolutions, Adam kernel, shared kernels)', async () => {
    // Share memory-bound kernels from small inputs on, so that their pooled paths run too.
    const saved = simdSettings.minValuesPerThread;
    simdSettings.minValuesPerThread = 1 << 12;
    try {
      const model = smallCnn({ seed: 5 });
      model.compile({
        optimizer: tf.train.adam(1e-3),
        loss: 'categoricalCrossentropy',
        metrics: ['accuracy'],
      });
      const xs = tf.randomUniform([64, 28, 28, 1], 0, 1, 'float32', 6);
      const ys = tf.oneHot(tf.randomUniform([64], 0, 10, 'int32', 7), 10);
      const epoch = () => model.fit(xs, ys, { epochs: 1, batchSize: 16, verbose: 0 });
      const kernelsUsed = (
        await tf.profile(async () => {
          await epoch();
        })
      ).kernels.map((k) => k.name);
      for (const name of ['FusedConv2D', 'AntifragileAdam', 'AntifragileReluGrad', 'MaxPool']) {
        expect(kernelsUsed).toContain(name);
      }
      await epoch();
      const backend = tf.backend() as unknown as {
        numDataIds(): number;
        wasm: { wasmMemory?: { buffer: ArrayBufferLike } };
      };
      const tensors = tf.memory().numTensors;
      const dataIds = backend.numDataIds();
      const heapBytes = backend.wasm.wasmMemory?.buffer.byteLength;
      for (let i = 0; i < 3; i++) await epoch();
      expect(tf.memory().numTensors).toBe(tensors);
      expect(backend.numDataIds()).toBe(dataIds);
      expect(backend.wasm.wasmMemory?.buffer.byteLength).toBe(heapBytes);
      const history = await model.fit(xs, ys, { epochs: 1, batchSize: 16, verbose: 0 });
      expect(Number.isFinite(history.history.loss[0] as number)).toBe(true);
      tf.dispose([xs, ys]);
      model.dispose();
    } finally {
      simdSettings.minValuesPerThread = saved;
    }
  });
});
