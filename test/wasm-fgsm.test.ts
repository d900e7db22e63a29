/**
 * FGSM on `wasm` agrees with the `cpu` backend on a small CNN trained (on wasm, with our
 * kernels) on real MNIST digits: input gradients (cosine ≥ 0.9999, identical signs wherever both
 * are non-zero), and the analysis gives the same labels on either backend. Training keeps
 * `numTensors` and the wasm heap flat over epochs.
 */
import * as tf from '@tensorflow/tfjs';
import { analyze, logitsFunction } from '../src/analysis';
import type { AnalysisReport } from '../src/analysis/types';
import { smallCnn } from '../src/models/small-cnn';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';
import { switchToWasm } from './support/wasm';

const TRAIN = 2000;
const EVAL = 100;
const ANALYSED = 100;
const EPOCHS = 3;

interface HostSet {
  xs: Float32Array;
  ys: Float32Array;
  xShape: number[];
  yShape: number[];
}

let previousBackend = '';
let evalSet: HostSet;
let trainedWeights: { values: Float32Array; shape: number[] }[] = [];
const epochMemory: { numTensors: number; heapBytes: number; loss: number }[] = [];

function wasmHeapBytes(): number {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  return backend.wasm?.HEAPU8.byteLength ?? 0;
}

function toHost(xs: tf.Tensor, ys: tf.Tensor): HostSet {
  return {
    xs: xs.dataSync() as Float32Array,
    ys: ys.dataSync() as Float32Array,
    xShape: xs.shape.slice(),
    yShape: ys.shape.slice(),
  };
}

/** A smallCnn on the current backend holding the trained weights. */
function trainedModel(): tf.LayersModel {
  const model = smallCnn();
  const weights = trainedWeights.map((w) => tf.tensor(w.values, w.shape));
  model.setWeights(weights);
  tf.dispose(weights);
  return model;
}

/** The input gradient of the summed cross-entropy from logits, as FGSM takes it. */
function inputGradient(model: tf.LayersModel, set: HostSet): Float32Array {
  const logits = logitsFunction(model);
  return tf.tidy(() => {
    const xs = tf.tensor(set.xs, set.xShape);
    const ys = tf.tensor(set.ys, set.yShape);
    const g = tf.grad((x: tf.Tensor) =>
      tf.losses.softmaxCrossEntropy(ys, logits(x), undefined, 0, tf.Reduction.SUM),
    )(xs);
    return g.dataSync() as Float32Array;
  });
}

async function analysisOn(backend: 'wasm' | 'cpu'): Promise<AnalysisReport> {
  await tf.setBackend(backend);
  const model = trainedModel();
  const n = ANALYSED;
  const xs = tf.tensor(evalSet.xs.subarray(0, n * 784), [n, 28, 28, 1]);
  const ys = tf.tensor(evalSet.ys.subarray(0, n * 10), [n, 10]);
  try {
    // FGSM once against the unfiltered model (regenerate: false): the cpu backend needs seconds
    // per input gradient, so regenerating it at every step would take minutes.
    return await analyze(
      model,
      { xs, ys },
      {
        epsilon: 0.3,
        steps: 5,
        batchSize: 100,
        regenerate: false,
        parameters: [/^conv2\/kernel/, /^dense2\/kernel/],
      },
    );
  } finally {
    tf.dispose([xs, ys]);
    model.dispose();
  }
}

beforeAll(async () => {
  previousBackend = await switchToWasm();
  const { train, test } = loadBuiltinMnist({ trainSize: TRAIN, testSize: EVAL, seed: 3 });
  evalSet = toHost(test.xs, test.ys);
  const model = smallCnn({ seed: 1 });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const history = await model.fit(train.xs, train.ys, {
      batchSize: 100,
      epochs: 1,
      shuffle: false,
      verbose: 0,
    });
    epochMemory.push({
      numTensors: tf.memory().numTensors,
      heapBytes: wasmHeapBytes(),
      loss: history.history.loss[0] as number,
    });
  }
  trainedWeights = model.getWeights().map((w) => ({
    values: w.dataSync() as Float32Array,
    shape: w.shape.slice(),
  }));
  model.dispose();
  tf.dispose([train.xs, train.ys, test.xs, test.ys]);
}, 120_000);

afterAll(async () => {
  await tf.setBackend(previousBackend);
});

it('trains the CNN on wasm with numTensors and the wasm heap flat over epochs', () => {
  expect(epochMemory[EPOCHS - 1].loss).toBeLessThan(epochMemory[0].loss);
  expect(epochMemory[EPOCHS - 1].loss).toBeLessThan(0.6);
  for (let epoch = 1; epoch < EPOCHS; epoch++) {
    expect(epochMemory[epoch].numTensors).toBe(epochMemory[0].numTensors);
    expect(epochMemory[epoch].heapBytes).toBe(epochMemory[1].heapBytes);
  }
});

it('gives FGSM input gradients that agree with cpu (cosine, signs)', async () => {
  await tf.setBackend('wasm');
  const model = trainedModel();
  const onWasm = inputGradient(model, evalSet);
  model.dispose();
  await tf.setBackend('cpu');
  const cpuModel = trainedModel();
  const onCpu = inputGradient(cpuModel, evalSet);
  cpuModel.dispose();
  await tf.setBackend('wasm');

  let dot = 0;
  let nw = 0;
  let nc = 0;
  let signMismatches = 0;
  let nonZero = 0;
  // Gradients that cancel to ~1e-8 of the largest one are zero up to float32 rounding of the
  // sums (their sign differs between any two backends, cpu and TensorFlow included).
  const noise = 1e-6 * onCpu.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (let i = 0; i < onCpu.length; i++) {
    dot += onWasm[i] * onCpu[i];
    nw += onWasm[i] * onWasm[i];
    nc += onCpu[i] * onCpu[i];
    if (onWasm[i] !== 0 && onCpu[i] !== 0) {
      nonZero++;
      const significant = Math.max(Math.abs(onWasm[i]), Math.abs(onCpu[i])) > noise;
      if (significant && Math.sign(onWasm[i]) !== Math.sign(onCpu[i])) signMismatches++;
    }
  }
  expect(dot / Math.sqrt(nw * nc)).toBeGreaterThanOrEqual(0.9999);
  expect(nonZero).toBeGreaterThan(onCpu.length / 4);
  expect(signMismatches).toBe(0);
});

it('gives the same analysis labels on wasm and cpu', async () => {
  const onWasm = await analysisOn('wasm');
  const onCpu = await analysisOn('cpu');
  await tf.setBackend('wasm');
  expect(onWasm.backend).toBe('wasm');
  expect(onCpu.backend).toBe('cpu');
  expect(onWasm.reference).toEqual(onCpu.reference);
  // Weight names get a per-model suffix (conv2/kernel_1, …): compare by layer.
  const labels = (r: AnalysisReport) =>
    r.parameters.map((p) => ({
      layer: p.layer,
      labels: Object.fromEntries(Object.entries(p.filters).map(([f, res]) => [f, res?.labels])),
    }));
  expect(labels(onWasm)).toEqual(labels(onCpu));
  expect(onWasm.parameters.map((p) => p.layer)).toEqual(['conv2', 'dense2']);
}, 120_000);
