/**
 * Equivalence with PyTorch: the torchvision-equivalent definitions of `bench/torch/models_bench.py`
 * export their weights, an input batch and their eval-mode logits; loaded into our builders, the
 * tfjs models must give the same logits. This checks what parameter counts cannot: padding
 * alignment, ceil-mode pooling, channel split and shuffle order, block wiring.
 * Runs where the project's `.venv` has torch (`node scripts/setup.js --torch`); skipped elsewhere.
 */
import * as cp from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { buildModel, ModelName } from '../src/models';
import { describeIf } from './support/skip';

const ROOT = path.join(__dirname, '..');
const PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
const SCRIPT = path.join(ROOT, 'bench', 'torch', 'models_bench.py');
const hasTorch =
  fs.existsSync(PYTHON) &&
  cp.spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

interface Manifest {
  tensors: { name: string; shape: number[]; file: string }[];
  input: number[];
  logits: number[];
}

function readFloats(file: string): Float32Array {
  const bytes = fs.readFileSync(file);
  return new Float32Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  );
}

/** torch state_dict entry → (tfjs layer, weight role, tfjs value). */
function toTfjs(model: tf.LayersModel, name: string, shape: number[], data: Float32Array) {
  const dot = name.lastIndexOf('.');
  const layer = model.getLayer(name.slice(0, dot).replace(/\./g, '_'));
  const field = name.slice(dot + 1);
  const kind = layer.getClassName();
  let value = tf.tensor(data, shape);
  if (field === 'weight' && kind === 'Conv2D') value = value.transpose([2, 3, 1, 0]);
  else if (field === 'weight' && kind === 'DepthwiseConv2D') value = value.transpose([2, 3, 0, 1]);
  else if (field === 'weight' && kind === 'Dense') value = value.transpose([1, 0]);
  const role: Record<string, Record<string, string>> = {
    BatchNormalization: {
      weight: 'gamma',
      bias: 'beta',
      running_mean: 'moving_mean',
      running_var: 'moving_variance',
    },
    Conv2D: { weight: 'kernel', bias: 'bias' },
    DepthwiseConv2D: { weight: 'depthwise_kernel' },
    Dense: { weight: 'kernel', bias: 'bias' },
  };
  const weight = role[kind]?.[field];
  if (!weight) throw new Error(`no tfjs weight for torch '${name}' on a ${kind} layer`);
  return { layer, weight, value };
}

function loadTorchWeights(model: tf.LayersModel, dir: string, manifest: Manifest): void {
  const perLayer = new Map<tf.layers.Layer, Map<string, tf.Tensor>>();
  for (const t of manifest.tensors) {
    const { layer, weight, value } = toTfjs(
      model,
      t.name,
      t.shape,
      readFloats(path.join(dir, t.file)),
    );
    if (!perLayer.has(layer)) perLayer.set(layer, new Map());
    perLayer.get(layer)?.set(weight, value);
  }
  let assigned = 0;
  for (const [layer, values] of perLayer) {
    const ordered = layer.weights.map((w) => {
      const role = (w.originalName.split('/').pop() ?? '').replace(/_\d+$/, '');
      const v = values.get(role);
      if (!v) throw new Error(`torch gave no '${role}' for layer ${layer.name}`);
      return v;
    });
    layer.setWeights(ordered);
    assigned += ordered.length;
    tf.dispose(ordered);
  }
  // Every tfjs weight received a torch value (none kept its initial value).
  expect(assigned).toBe(model.weights.length);
}

const CASES: [ModelName, [number, number, number], number][] = [
  ['resnet18', [28, 28, 1], 0.25], // MNIST: the 7×7/2 stem and max pooling on 28×28
  ['resnet50', [33, 33, 3], 0.125], // odd size: strided padding alignment
  ['squeezenet1_1', [28, 28, 1], 0.5], // ceil-mode pooling that needs extra padding (6 → 3)
  ['shufflenet_v2_x1_0', [37, 37, 3], 0.5], // channel split and shuffle, odd sizes
];

describeIf(
  hasTorch,
  `${PYTHON} cannot import torch and numpy (install them with node scripts/setup.js --torch)`,
)('equivalence with the PyTorch definitions', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'models-torch-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(CASES)('%s on %j (width %f) gives torch logits', (name, inputShape, width) => {
    const out = path.join(dir, name);
    const spec = path.join(dir, `${name}.json`);
    const classes = 7;
    fs.writeFileSync(
      spec,
      JSON.stringify({ model: name, input: inputShape, classes, width, batch: 3, out }),
    );
    const run = cp.spawnSync(PYTHON, [SCRIPT, 'export', spec], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`models_bench.py export failed: ${run.stderr}`);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'),
    ) as Manifest;

    const model = buildModel(name, { inputShape, classes, width });
    loadTorchWeights(model, out, manifest);
    const logitsModel = tf.model({
      inputs: model.inputs,
      outputs: model.getLayer('softmax').input as tf.SymbolicTensor,
    });
    const xs = tf.tensor(readFloats(path.join(out, 'input.bin')), manifest.input);
    const ours = logitsModel.predict(xs) as tf.Tensor;
    const theirs = readFloats(path.join(out, 'logits.bin'));
    expect(ours.shape).toEqual(manifest.logits);
    const values = ours.dataSync();
    const scale = Math.max(...Array.from(theirs, Math.abs));
    expect(scale).toBeGreaterThan(1e-3); // a meaningful comparison, not zeros against zeros
    let worst = 0;
    theirs.forEach((t, i) => (worst = Math.max(worst, Math.abs(values[i] - t))));
    expect(worst / scale).toBeLessThan(1e-4);
    tf.dispose([xs, ours]);
    model.dispose();
  });
});
