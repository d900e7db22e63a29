import * as tf from '@tensorflow/tfjs';
import { NativeBatchNormalization } from './batch-norm';
import { LazyGradConv2D } from './conv';

/**
 * Options shared by the builders of the paper's architectures ({@link resnet18}, {@link resnet50},
 * {@link squeezenet1_1}, {@link shufflenetV2x1_0}).
 */
export interface ArchitectureOptions {
  /**
   * Input shape `[height, width, channels]` (NHWC); default MNIST's `[28, 28, 1]`. Use
   * `[32, 32, 3]` for CIFAR-10, `[64, 64, 3]` for Tiny ImageNet, `[224, 224, 3]` for ImageNet.
   */
  inputShape?: [number, number, number];
  /** Number of classes (units of the final layer); default 10. */
  classes?: number;
  /**
   * Channel multiplier applied to every hidden layer's channel count (rounded, at least 1;
   * ShuffleNet's stage widths stay even); default 1 (torchvision's model). Values below 1 give
   * reduced versions for quick runs and tests.
   */
  width?: number;
  /** Seed of the weight initialisers, for reproducible runs; default 0. */
  seed?: number;
}

/** {@link ArchitectureOptions} with every default filled in. */
export interface ResolvedArchitectureOptions {
  inputShape: [number, number, number];
  classes: number;
  width: number;
  seed: number;
}

/** Checks the options of a builder, naming the model, the option and the value received. */
export function resolveArchitectureOptions(
  model: string,
  options: ArchitectureOptions,
): ResolvedArchitectureOptions {
  const inputShape = options.inputShape ?? [28, 28, 1];
  if (
    !Array.isArray(inputShape) ||
    inputShape.length !== 3 ||
    !inputShape.every((d) => Number.isInteger(d) && d >= 1)
  ) {
    throw new Error(
      `${model}: 'inputShape' must be [height, width, channels] of positive integers; got ${JSON.stringify(inputShape)}`,
    );
  }
  const classes = options.classes ?? 10;
  if (!Number.isInteger(classes) || classes < 1) {
    throw new Error(`${model}: 'classes' must be a positive integer; got ${classes}`);
  }
  const width = options.width ?? 1;
  if (typeof width !== 'number' || !Number.isFinite(width) || width <= 0 || width > 16) {
    throw new Error(`${model}: 'width' must be a number in (0, 16]; got ${width}`);
  }
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) {
    throw new Error(`${model}: 'seed' must be a non-negative integer; got ${seed}`);
  }
  return { inputShape: [inputShape[0], inputShape[1], inputShape[2]], classes, width, seed };
}

/** A channel count scaled by the width multiplier: rounded, at least 1. */
export function scaleChannels(channels: number, width: number): number {
  return Math.max(1, Math.round(channels * width));
}

/**
 * How a weight is initialised, in torch's terms (fans as torch computes them: a convolution's
 * fan-in is `in/groups · k · k`, its fan-out `out · k · k`).
 * - `kaimingNormalFanOut`: N(0, 2/fan_out) — torchvision's ResNet convolutions.
 * - `kaimingUniform`: U(±√(6/fan_in)) — torchvision's SqueezeNet convolutions.
 * - `torchDefault`: U(±1/√fan_in) for weight and bias — torch's default for `Conv2d`/`Linear`.
 * - `{ normal: std }`: N(0, std²) — SqueezeNet's final convolution (std 0.01).
 * Biases are zero except under `torchDefault`.
 */
export type InitScheme =
  'kaimingNormalFanOut' | 'kaimingUniform' | 'torchDefault' | { normal: number };

/** A tfjs weight initialiser. */
type Initializer = ReturnType<typeof tf.initializers.zeros>;

/** Size of a map after a torch convolution or pooling window (floor or ceil mode). */
export function torchOutputSize(
  size: number,
  kernel: number,
  stride: number,
  padding: number,
  ceilMode = false,
): number {
  const span = size + 2 * padding - kernel + (ceilMode ? stride - 1 : 0);
  let out = Math.floor(span / stride) + 1;
  // torch: the last pooling window must start inside the input or its left padding.
  if (ceilMode && (out - 1) * stride >= size + padding) out -= 1;
  return out;
}

interface ConvSpec {
  name: string;
  filters: number;
  kernel: number;
  stride?: number;
  padding?: number;
  bias?: boolean;
  init: InitScheme;
}

interface DepthwiseSpec {
  name: string;
  kernel: number;
  stride?: number;
  padding?: number;
  init: InitScheme;
}

interface PoolSpec {
  name: string;
  pool: number;
  stride: number;
  padding?: number;
  ceilMode?: boolean;
}

/**
 * Builds a functional model layer by layer with torch's conventions: explicit symmetric zero
 * padding (torch's `padding=p`) so that output sizes and pixel alignment equal torch's, torch's
 * initialisation schemes with per-layer seeds, BatchNorm with torch's epsilon and momentum, and
 * a check that no feature map shrinks to nothing.
 */
export class TorchStyleBuilder {
  private seedCounter = 0;

  constructor(
    /** Model name, used in error messages. */
    readonly model: string,
    readonly options: ResolvedArchitectureOptions,
  ) {}

  /** The next initialiser seed: distinct per layer, reproducible for the model's seed. */
  private nextSeed(): number {
    this.seedCounter += 1;
    return this.options.seed * 100_003 + this.seedCounter;
  }

  private initializers(
    scheme: InitScheme,
    fanIn: number,
    fanOut: number,
  ): { kernel: Initializer; bias: Initializer } {
    const zeros = tf.initializers.zeros();
    if (typeof scheme === 'object') {
      return {
        kernel: tf.initializers.randomNormal({
          mean: 0,
          stddev: scheme.normal,
          seed: this.nextSeed(),
        }),
        bias: zeros,
      };
    }
    switch (scheme) {
      case 'kaimingNormalFanOut':
        return {
          kernel: tf.initializers.randomNormal({
            mean: 0,
            stddev: Math.sqrt(2 / fanOut),
            seed: this.nextSeed(),
          }),
          bias: zeros,
        };
      case 'kaimingUniform': {
        const bound = Math.sqrt(6 / fanIn);
        return {
          kernel: tf.initializers.randomUniform({
            minval: -bound,
            maxval: bound,
            seed: this.nextSeed(),
          }),
          bias: zeros,
        };
      }
      case 'torchDefault': {
        const bound = 1 / Math.sqrt(fanIn);
        return {
          kernel: tf.initializers.randomUniform({
            minval: -bound,
            maxval: bound,
            seed: this.nextSeed(),
          }),
          bias: tf.initializers.randomUniform({
            minval: -bound,
            maxval: bound,
            seed: this.nextSeed(),
          }),
        };
      }
    }
  }

  /** Height and width of a 4-D symbolic tensor. */
  private spatial(x: tf.SymbolicTensor): [number, number] {
    const [, h, w] = x.shape;
    return [h as number, w as number];
  }

  private channels(x: tf.SymbolicTensor): number {
    return x.shape[3] as number;
  }

  /** Throws when a window would not fit: the input is too small for this architecture. */
  private checkFits(layer: string, x: tf.SymbolicTensor, out: [number, number]): void {
    if (out[0] < 1 || out[1] < 1) {
      const [h, w] = this.spatial(x);
      throw new Error(
        `${this.model}: input shape [${this.options.inputShape}] is too small: layer '${layer}' ` +
          `would map a ${h}×${w} feature map to ${out[0]}×${out[1]}; use a larger inputShape`,
      );
    }
  }

  /** Zero-pads `before` on top/left and `after` on bottom/right (no layer when both are 0). */
  private pad(
    x: tf.SymbolicTensor,
    name: string,
    before: number,
    after: number,
  ): tf.SymbolicTensor {
    if (before === 0 && after === 0) return x;
    return tf.layers
      .zeroPadding2d({
        padding: [
          [before, after],
          [before, after],
        ],
        name,
      })
      .apply(x) as tf.SymbolicTensor;
  }

  /** A padding mode for a convolution: `same` where it equals torch's symmetric padding. */
  private convPadding(
    x: tf.SymbolicTensor,
    name: string,
    kernel: number,
    stride: number,
    padding: number,
  ): { input: tf.SymbolicTensor; mode: 'same' | 'valid' } {
    if (padding === 0) return { input: x, mode: 'valid' };
    if (stride === 1 && 2 * padding === kernel - 1) return { input: x, mode: 'same' };
    return { input: this.pad(x, `${name}_pad`, padding, padding), mode: 'valid' };
  }

  /** Checks that a square kernel with torch's stride and padding leaves a non-empty map. */
  private checkKernelFits(
    name: string,
    x: tf.SymbolicTensor,
    kernel: number,
    stride: number,
    padding: number,
  ): void {
    const [h, w] = this.spatial(x);
    this.checkFits(name, x, [
      torchOutputSize(h, kernel, stride, padding),
      torchOutputSize(w, kernel, stride, padding),
    ]);
  }

  /**
   * torch `Conv2d(in, filters, kernel, stride, padding, bias)` ({@link LazyGradConv2D}: no
   * input gradient computed where none is needed, as torch).
   */
  conv(x: tf.SymbolicTensor, spec: ConvSpec): tf.SymbolicTensor {
    const stride = spec.stride ?? 1;
    const padding = spec.padding ?? 0;
    this.checkKernelFits(spec.name, x, spec.kernel, stride, padding);
    const fanIn = this.channels(x) * spec.kernel * spec.kernel;
    const fanOut = spec.filters * spec.kernel * spec.kernel;
    const init = this.initializers(spec.init, fanIn, fanOut);
    const { input, mode } = this.convPadding(x, spec.name, spec.kernel, stride, padding);
    return new LazyGradConv2D({
      name: spec.name,
      filters: spec.filters,
      kernelSize: spec.kernel,
      strides: stride,
      padding: mode,
      useBias: spec.bias ?? false,
      kernelInitializer: init.kernel,
      biasInitializer: init.bias,
    }).apply(input) as tf.SymbolicTensor;
  }

  /** torch `Conv2d(c, c, kernel, stride, padding, groups=c, bias=False)` (depthwise). */
  depthwise(x: tf.SymbolicTensor, spec: DepthwiseSpec): tf.SymbolicTensor {
    const stride = spec.stride ?? 1;
    const padding = spec.padding ?? 0;
    this.checkKernelFits(spec.name, x, spec.kernel, stride, padding);
    const fan = spec.kernel * spec.kernel;
    const init = this.initializers(spec.init, fan, this.channels(x) * fan);
    const { input, mode } = this.convPadding(x, spec.name, spec.kernel, stride, padding);
    return tf.layers
      .depthwiseConv2d({
        name: spec.name,
        kernelSize: spec.kernel,
        strides: stride,
        padding: mode,
        depthMultiplier: 1,
        useBias: false,
        depthwiseInitializer: init.kernel,
      })
      .apply(input) as tf.SymbolicTensor;
  }

  /**
   * torch `BatchNorm2d` (eps 1e-5, momentum 0.1 = tfjs momentum 0.9; γ = 1, β = 0), trained
   * with TensorFlow's fused kernels on the native backend ({@link NativeBatchNormalization}).
   */
  bn(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    return new NativeBatchNormalization({ name, axis: -1, epsilon: 1e-5, momentum: 0.9 }).apply(
      x,
    ) as tf.SymbolicTensor;
  }

  relu(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    return tf.layers.reLU({ name }).apply(x) as tf.SymbolicTensor;
  }

  /**
   * torch `MaxPool2d(pool, stride, padding, ceil_mode)`, with torch's output size. The padding
   * is zeros, which equals torch's −∞ padding because every max pooling in these models follows
   * a ReLU (inputs ≥ 0) and every window holds at least one input element.
   */
  maxPool(x: tf.SymbolicTensor, spec: PoolSpec): tf.SymbolicTensor {
    const padding = spec.padding ?? 0;
    const [h, w] = this.spatial(x);
    const out: [number, number] = [
      torchOutputSize(h, spec.pool, spec.stride, padding, spec.ceilMode),
      torchOutputSize(w, spec.pool, spec.stride, padding, spec.ceilMode),
    ];
    this.checkFits(spec.name, x, out);
    const extra = (size: number, o: number) =>
      Math.max(0, (o - 1) * spec.stride + spec.pool - size - padding);
    let input = x;
    const afterH = extra(h, out[0]);
    const afterW = extra(w, out[1]);
    if (padding > 0 || afterH > 0 || afterW > 0) {
      input = tf.layers
        .zeroPadding2d({
          padding: [
            [padding, afterH],
            [padding, afterW],
          ],
          name: `${spec.name}_pad`,
        })
        .apply(x) as tf.SymbolicTensor;
    }
    return tf.layers
      .maxPooling2d({
        name: spec.name,
        poolSize: spec.pool,
        strides: spec.stride,
        padding: 'valid',
      })
      .apply(input) as tf.SymbolicTensor;
  }

  globalAveragePool(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    return tf.layers.globalAveragePooling2d({ name }).apply(x) as tf.SymbolicTensor;
  }

  /** torch `Linear(in, units)` with its default initialisation; linear output (logits). */
  dense(x: tf.SymbolicTensor, name: string, units: number): tf.SymbolicTensor {
    const fanIn = x.shape[x.shape.length - 1] as number;
    const init = this.initializers('torchDefault', fanIn, units);
    return tf.layers
      .dense({
        name,
        units,
        activation: 'linear',
        kernelInitializer: init.kernel,
        biasInitializer: init.bias,
      })
      .apply(x) as tf.SymbolicTensor;
  }

  /** The final softmax, a layer of its own named `softmax` so the logits stay reachable. */
  softmax(x: tf.SymbolicTensor): tf.SymbolicTensor {
    return tf.layers
      .activation({ activation: 'softmax', name: 'softmax' })
      .apply(x) as tf.SymbolicTensor;
  }
}
