import * as tf from '@tensorflow/tfjs';
import { selectParameters } from '../src/analysis/parameters';
import { NativeBatchNormalization } from '../src/models/batch-norm';
import {
  buildModel,
  ChannelShuffle,
  ChannelSplit,
  MODEL_NAMES,
  ModelName,
  torchOutputSize,
} from '../src/models';

const PAPER_MODELS: ModelName[] = ['resnet18', 'resnet50', 'squeezenet1_1', 'shufflenet_v2_x1_0'];

function size(shape: (number | null)[]): number {
  return shape.reduce<number>((n, d) => n * (d as number), 1);
}

function trainableCount(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + size(w.shape), 0);
}

/** A small random batch: images `[n, h, w, c]` and one-hot labels. */
function batch(n: number, shape: [number, number, number], classes: number, seed: number) {
  return tf.tidy(() => ({
    xs: tf.randomNormal([n, ...shape], 0, 1, 'float32', seed),
    ys: tf.oneHot(
      tf.tensor1d(
        Array.from({ length: n }, (_, i) => i % classes),
        'int32',
      ),
      classes,
    ),
  }));
}

describe('paper architectures at ImageNet size', () => {
  // torchvision's counts (1,000 classes, 224×224×3); torch counts BatchNorm's running statistics
  // as buffers, tfjs as non-trainable weights, so torchvision's count is our trainable count.
  const TORCHVISION: Record<string, number> = {
    resnet18: 11_689_512,
    resnet50: 25_557_032,
    squeezenet1_1: 1_235_496,
    shufflenet_v2_x1_0: 2_278_604,
  };
  // BatchNorm's moving mean and variance: 2 values per BN channel.
  const BN_STATISTICS: Record<string, number> = {
    resnet18: 9_600,
    resnet50: 53_120,
    squeezenet1_1: 0,
    shufflenet_v2_x1_0: 16_180,
  };

  it.each(PAPER_MODELS)('%s has exactly torchvision parameter count', (name) => {
    const model = buildModel(name, { inputShape: [224, 224, 3], classes: 1000 });
    try {
      expect(trainableCount(model)).toBe(TORCHVISION[name]);
      expect(model.countParams()).toBe(TORCHVISION[name] + BN_STATISTICS[name]);
      expect(model.outputs[0].shape).toEqual([null, 1000]);
    } finally {
      model.dispose();
    }
  });
});

describe('layer names and the parameters the analysis filters', () => {
  it('names ResNet-18 layers after torchvision module paths', () => {
    const model = buildModel('resnet18', { width: 0.25 });
    const names = model.layers.map((l) => l.name);
    for (const n of [
      'conv1',
      'bn1',
      'maxpool',
      'layer1_0_conv1',
      'layer1_1_bn2',
      'layer2_0_downsample_0',
      'layer2_0_downsample_1',
      'layer4_1_conv2',
      'avgpool',
      'fc',
      'softmax',
    ]) {
      expect(names).toContain(n);
    }
    expect(names).not.toContain('layer1_0_downsample_0'); // stride 1, same width: identity
    model.dispose();
  });

  it.each([
    // [model, convolution kernels, of which depthwise]
    ['resnet18', 20, 0],
    ['resnet50', 53, 0],
    ['squeezenet1_1', 26, 0],
    ['shufflenet_v2_x1_0', 56, 19],
  ] as const)(
    '%s: the default selection is every convolution kernel and the final layer (%i convs)',
    (name, convs, depthwise) => {
      const model = buildModel(name, { width: 0.25, inputShape: [32, 32, 3] });
      try {
        const selected = selectParameters(model);
        const classes = selected.map((p) => p.layer.getClassName());
        expect(classes.filter((c) => c === 'Conv2D' || c === 'DepthwiseConv2D')).toHaveLength(
          convs,
        );
        expect(classes.filter((c) => c === 'DepthwiseConv2D')).toHaveLength(depthwise);
        // Every selected tensor is a kernel; no bias, no BatchNorm weight or statistic.
        for (const p of selected) expect(p.name).toMatch(/\/(depthwise_)?kernel(_\d+)?$/);
        expect(selected.some((p) => p.layer.getClassName() === 'BatchNormalization')).toBe(false);
        // The last selected kernel is the final classifier: `fc` (Dense), or SqueezeNet's
        // 1×1 convolution `classifier_1`; only ResNet and ShuffleNet have a Dense layer.
        const last = selected[selected.length - 1];
        expect(last.layer.name).toBe(name === 'squeezenet1_1' ? 'classifier_1' : 'fc');
        expect(classes.filter((c) => c === 'Dense')).toHaveLength(name === 'squeezenet1_1' ? 0 : 1);
        expect(selected).toHaveLength(convs + (name === 'squeezenet1_1' ? 0 : 1));
      } finally {
        model.dispose();
      }
    },
  );

  it('keeps the logits reachable: the last layer is a separate softmax', () => {
    for (const name of PAPER_MODELS) {
      const model = buildModel(name, { width: 0.25 });
      const last = model.layers[model.layers.length - 1];
      expect(last.name).toBe('softmax');
      expect(last.getClassName()).toBe('Activation');
      model.dispose();
    }
  });
});

describe('training one step', () => {
  const cases: [ModelName, [number, number, number], number][] = [];
  for (const name of PAPER_MODELS) {
    cases.push([name, [28, 28, 1], 10], [name, [32, 32, 3], 10]);
  }

  it.each(cases)('%s trains one Adam step on input %j', async (name, inputShape, classes) => {
    const model = buildModel(name, { inputShape, classes, width: 0.25, seed: 3 });
    const { xs, ys } = batch(4, inputShape, classes, 7);
    try {
      expect(model.outputs[0].shape).toEqual([null, classes]);
      model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
      const kernel = selectParameters(model)[0].variable;
      const before = kernel.read().clone();
      const loss = (await model.trainOnBatch(xs, ys)) as number;
      expect(Number.isFinite(loss)).toBe(true);
      expect(loss).toBeGreaterThan(0);
      const change = tf.tidy(() => tf.max(tf.abs(tf.sub(kernel.read(), before))).dataSync()[0]);
      expect(change).toBeGreaterThan(0);
      before.dispose();
      const probs = model.predict(xs) as tf.Tensor;
      const sums = await probs.sum(1).data();
      probs.dispose();
      for (const s of sums) expect(s).toBeCloseTo(1, 5);
    } finally {
      tf.dispose([xs, ys]);
      model.dispose();
    }
  });

  it('trains a full-width ResNet-18 step at CIFAR size without leaking tensors', async () => {
    const model = buildModel('resnet18', { inputShape: [32, 32, 3], classes: 10 });
    const { xs, ys } = batch(8, [32, 32, 3], 10, 1);
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    await model.trainOnBatch(xs, ys); // creates Adam's slots
    const tensors = tf.memory().numTensors;
    const loss = (await model.trainOnBatch(xs, ys)) as number;
    expect(Number.isFinite(loss)).toBe(true);
    expect(tf.memory().numTensors).toBe(tensors);
    tf.dispose([xs, ys]);
    model.dispose();
  });
});

describe('save and load', () => {
  it.each(PAPER_MODELS)('%s: a save/load round trip gives the same outputs', async (name) => {
    const model = buildModel(name, { inputShape: [32, 32, 3], classes: 10, width: 0.25, seed: 5 });
    const { xs, ys } = batch(3, [32, 32, 3], 10, 2);
    // One training step so that BatchNorm statistics and weights differ from their initial values.
    model.compile({ optimizer: tf.train.adam(1e-2), loss: 'categoricalCrossentropy' });
    await model.trainOnBatch(xs, ys);
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved as tf.io.ModelArtifacts));
    try {
      expect(loaded.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
      const a = model.predict(xs) as tf.Tensor;
      const b = loaded.predict(xs) as tf.Tensor;
      expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
      tf.dispose([a, b]);
      if (name === 'shufflenet_v2_x1_0') {
        const classes = loaded.layers.map((l) => l.getClassName());
        expect(classes).toContain('ChannelShuffle');
        expect(classes).toContain('ChannelSplit');
      }
    } finally {
      tf.dispose([xs, ys]);
      model.dispose();
      loaded.dispose();
    }
  });
});

describe('channel shuffle and split layers', () => {
  it('shuffles channels as torch view-transpose-view does', () => {
    const x = tf.tensor4d([0, 1, 2, 3, 4, 5], [1, 1, 1, 6]);
    const y = new ChannelShuffle({ groups: 2 }).apply(x) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual([0, 3, 1, 4, 2, 5]);
    const z = new ChannelShuffle({ groups: 3 }).apply(x) as tf.Tensor;
    expect(Array.from(z.dataSync())).toEqual([0, 2, 4, 1, 3, 5]);
    tf.dispose([x, y, z]);
  });

  it('shuffles a list of parts as the shuffle of their concatenation, gradients included', () => {
    const a = tf.randomNormal([2, 3, 2, 4], 0, 1, 'float32', 41);
    const b = tf.randomNormal([2, 3, 2, 4], 0, 1, 'float32', 42);
    const layer = new ChannelShuffle({ groups: 2 });
    const joined = layer.apply([a, b]) as tf.Tensor;
    const reference = layer.apply(tf.concat([a, b], 3)) as tf.Tensor;
    expect(joined.shape).toEqual([2, 3, 2, 8]);
    expect(Array.from(joined.dataSync())).toEqual(Array.from(reference.dataSync()));
    const w = tf.randomNormal([2, 3, 2, 8], 0, 1, 'float32', 43);
    const viaParts = tf.grads((p: tf.Tensor, q: tf.Tensor) =>
      tf.sum(tf.mul(layer.apply([p, q]) as tf.Tensor, w)),
    )([a, b]);
    const viaConcat = tf.grads((p: tf.Tensor, q: tf.Tensor) =>
      tf.sum(tf.mul(layer.apply(tf.concat([p, q], 3)) as tf.Tensor, w)),
    )([a, b]);
    viaParts.forEach((g, i) =>
      expect(Array.from(g.dataSync())).toEqual(Array.from(viaConcat[i].dataSync())),
    );
    const symbolic = layer.apply([
      tf.input({ shape: [3, 2, 4] }),
      tf.input({ shape: [3, 2, 4] }),
    ]) as tf.SymbolicTensor;
    expect(symbolic.shape).toEqual([null, 3, 2, 8]);
    expect(() =>
      layer.apply([tf.input({ shape: [3, 2, 4] }), tf.input({ shape: [3, 2, 5] })]),
    ).toThrow(/parts must be 4-D .* of one shape/);
    tf.dispose([a, b, joined, reference, w, ...viaParts, ...viaConcat]);
  });

  it('splits channels into equal consecutive halves', () => {
    const x = tf.tensor4d([0, 1, 2, 3, 4, 5, 6, 7], [1, 1, 2, 4]);
    const [a, b] = new ChannelSplit({ groups: 2 }).apply(x) as tf.Tensor[];
    expect(Array.from(a.dataSync())).toEqual([0, 1, 4, 5]);
    expect(Array.from(b.dataSync())).toEqual([2, 3, 6, 7]);
    tf.dispose([x, a, b]);
  });

  it('rejects a channel count not divisible by the groups, and bad groups', () => {
    const input = tf.input({ shape: [4, 4, 5] });
    expect(() => new ChannelShuffle({ groups: 2 }).apply(input)).toThrow(
      /5 channels cannot be divided into 2 equal groups/,
    );
    expect(() => new ChannelSplit({ groups: 0 })).toThrow(
      /'groups' must be a positive integer; got 0/,
    );
  });

  it('serialises its configuration', () => {
    const layer = new ChannelShuffle({ groups: 4, name: 'shuffle' });
    expect(layer.getConfig()).toMatchObject({ groups: 4, name: 'shuffle' });
  });
});

describe('input sizes and options', () => {
  it('reproduces torch output sizes, ceil-mode pooling included', () => {
    expect(torchOutputSize(224, 7, 2, 3)).toBe(112); // ResNet stem
    expect(torchOutputSize(112, 3, 2, 1)).toBe(56); // its max pooling
    expect(torchOutputSize(111, 3, 2, 0, true)).toBe(55); // SqueezeNet's pools
    expect(torchOutputSize(6, 3, 2, 0, true)).toBe(3); // ceil: floor would give 2
    expect(torchOutputSize(6, 3, 2, 0, false)).toBe(2);
    expect(torchOutputSize(2, 3, 2, 0, true)).toBe(1);
  });

  it('follows torch sizes through SqueezeNet on MNIST input (13 → 6 → 3 → 1)', () => {
    const model = buildModel('squeezenet1_1', { width: 0.25 });
    const spatial = (layer: string) => model.getLayer(layer).outputShape.slice(1, 3);
    expect(spatial('features_0')).toEqual([13, 13]);
    expect(spatial('features_2')).toEqual([6, 6]);
    expect(spatial('features_5')).toEqual([3, 3]);
    expect(spatial('features_8')).toEqual([1, 1]);
    model.dispose();
  });

  it('keeps the ImageNet stems on MNIST input without reaching zero size', () => {
    const resnet = buildModel('resnet18', { width: 0.25 });
    expect(resnet.getLayer('conv1').outputShape).toEqual([null, 14, 14, 16]);
    expect(resnet.getLayer('maxpool').outputShape).toEqual([null, 7, 7, 16]);
    expect(resnet.getLayer('layer4_1_relu').outputShape).toEqual([null, 1, 1, 128]);
    resnet.dispose();
    const shufflenet = buildModel('shufflenet_v2_x1_0', { width: 0.25 });
    expect(shufflenet.getLayer('conv5_2').outputShape).toEqual([null, 1, 1, 256]);
    shufflenet.dispose();
  });

  it('names the layer when the input is too small', () => {
    expect(() => buildModel('squeezenet1_1', { inputShape: [8, 8, 1] })).toThrow(
      /squeezenet1_1: input shape \[8,8,1\] is too small: layer 'features_5' would map a 1×1 feature map to 0×0/,
    );
  });

  it('rejects bad options, naming the option and the value', () => {
    expect(() => buildModel('resnet18', { width: 0 })).toThrow(
      /resnet18: 'width' must be a number in \(0, 16\]; got 0/,
    );
    expect(() => buildModel('resnet50', { classes: 2.5 })).toThrow(
      /'classes' must be a positive integer; got 2.5/,
    );
    expect(() => buildModel('shufflenet_v2_x1_0', { inputShape: [28, 28] as never })).toThrow(
      /'inputShape' must be \[height, width, channels\]/,
    );
    expect(() => buildModel('vgg16' as ModelName)).toThrow(
      /unknown model 'vgg16'; use one of resnet18, resnet50, squeezenet1_1, shufflenet_v2_x1_0, small_cnn/,
    );
    expect(() => buildModel('small_cnn', { width: 0.5 })).toThrow(/'width' is not supported/);
  });

  it('builds every registered model, the same weights for the same seed', () => {
    for (const name of MODEL_NAMES) {
      const a = buildModel(name, { width: name === 'small_cnn' ? undefined : 0.25, seed: 4 });
      const b = buildModel(name, { width: name === 'small_cnn' ? undefined : 0.25, seed: 4 });
      const wa = a.getWeights();
      const wb = b.getWeights();
      expect(wa.length).toBe(wb.length);
      wa.forEach((w, i) => expect(Array.from(w.dataSync())).toEqual(Array.from(wb[i].dataSync())));
      a.dispose();
      b.dispose();
    }
  });
});

describe('BatchNorm on the native fused kernels', () => {
  it.each([3, 4])('%i channels: a training step leaves no tensors behind', (channels) => {
    const layer = new NativeBatchNormalization({ momentum: 0.9, epsilon: 1e-5 });
    const x = tf.randomNormal([4, 3, 3, channels], 0, 1, 'float32', 5);
    layer.build(x.shape);
    const step = () =>
      tf.tidy(() => {
        const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        tf.variableGrads(
          () => tf.sum(layer.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
          variables,
        );
      });
    step();
    const before = tf.memory().numTensors;
    step();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    for (const w of layer.weights) w.dispose();
  });

  // Channel counts not divisible by 4 run TensorFlow's Eigen kernel (as 5-D), the others oneDNN's.
  it.each([
    ['3 channels (Eigen kernel)', 3],
    ['4 channels (oneDNN kernel)', 4],
  ] as [string, number][])(
    '%s: trains exactly as tfjs BatchNormalization: outputs, gradients, moving statistics',
    (_, channels) => {
      const shape = [6, 5, 4, channels];
      const x = tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', 9).mul(2).add(0.5));
      const weights = tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', 10));
      const args = { momentum: 0.9, epsilon: 1e-5 };
      const native = new NativeBatchNormalization(args);
      const reference = tf.layers.batchNormalization(args);
      const perChannel = (values: number[]) => tf.tensor1d(values.slice(0, channels));
      const results = [native, reference].map((layer) => {
        layer.build(x.shape);
        layer.setWeights([
          perChannel([0.5, 1.5, -1, 0.75]),
          perChannel([0.1, -0.2, 0.3, 0.4]),
          perChannel([0.01, 0.02, 0.03, 0.04]),
          perChannel([1, 2, 3, 4]),
        ]);
        const loss = (input: tf.Tensor) =>
          tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, weights)) as tf.Scalar;
        const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads } = tf.variableGrads(() => loss(x), variables);
        const dx = tf.grad(loss)(x);
        const out = [
          value,
          dx,
          ...variables.map((v) => grads[v.name]),
          ...layer.getWeights().slice(2),
        ];
        return out.map((t) => Array.from(t.dataSync()));
      });
      expect(results[0]).toHaveLength(results[1].length);
      results[0].forEach((values, i) =>
        values.forEach((v, j) => expect(v).toBeCloseTo(results[1][i][j], 4)),
      );
      // The moving statistics moved (two training calls each), so the comparison is not vacuous.
      expect(results[0][results[0].length - 2][0]).not.toBeCloseTo(0.01, 3);
      tf.dispose([x, weights]);
      for (const w of [...native.weights, ...reference.weights]) w.dispose();
    },
  );
});
