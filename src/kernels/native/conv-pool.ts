import * as tf from '@tensorflow/tfjs';
import type { NativeBackend } from './native-backend';
import { ourOpsAvailable } from './our-ops';

/**
 * A convolution into few input channels, its bias, ReLU and max pooling as one op of ours,
 * `AntifragileConvPool` (C++ in ./addon/conv_pool.cc, built by `npm run setup` beside
 * tfjs-node's addon, loaded with the backend by ./ops-module.ts).
 *
 * Why: the first block of a LeNet-style network (a 3×3 convolution from one or three channels,
 * ReLU, 2×2 pooling) is all memory passes in TensorFlow: its convolution into few input channels
 * runs far below the machine's multiply rate, and the bias, ReLU and pooling each stream the
 * full-size output once more. The batched sweep makes those outputs large (every filtered
 * variant of the layer at once). Measured on this project's machine, 256 digits into 73
 * variants × 16 channels, pooled and laid out per variant: 43 ms against 262–295 ms for
 * TensorFlow's ops; one model on 256 digits: 1.1 against 8.7–9.8 ms.
 *
 * The values are TensorFlow's, bit for bit: for fewer than 8 input channels its CPU `Conv2D`
 * sums each output as a chain of fused multiply-adds over the taps in (row, column, channel)
 * order from 0, which the op repeats; the bias is one float32 addition, ReLU `v > 0 ? v : 0`,
 * and the maximum of the window commutes exactly with both. `test/conv-pool.test.ts` checks it
 * against TensorFlow's own ops on every shape this module accepts.
 */

type Pair = [number, number];

/** Input channels below which TensorFlow's convolution is the fused multiply-add chain we repeat. */
const MAX_CHANNELS = 8;
/** Output channels per variant come in multiples of this (the op's vector width). */
const CHANNEL_BLOCK = 16;
/** The op's largest pooling window (positions). */
const MAX_WINDOW = 61;

let calls = 0;

/** How many times the conv-pool ops ran (tests check they are used). */
export function convPoolCallCount(): number {
  return calls;
}

/** Whether the conv-pool ops can run (./our-ops.ts). */
export const convPoolAvailable = ourOpsAvailable;

/** The geometry the op takes: a stride-1 `valid` convolution, then `valid` pooling. */
export interface ConvPoolShape {
  /** Input `[n, h, w, c]`. */
  input: number[];
  /** Filter `[kh, kw, c, f]` of one variant. */
  filter: number[];
  poolSize: Pair;
  strides: Pair;
}

/** Whether {@link convPool} takes this geometry (and the op is available). */
export function convPoolFits(shape: ConvPoolShape): boolean {
  const [, h, w, c] = shape.input;
  const [kh, kw, fc, f] = shape.filter;
  const [ph, pw] = shape.poolSize;
  const [sh, sw] = shape.strides;
  return (
    c < MAX_CHANNELS &&
    fc === c &&
    f % CHANNEL_BLOCK === 0 &&
    ph * pw <= MAX_WINDOW &&
    ph >= 1 &&
    pw >= 1 &&
    sh >= 1 &&
    sw >= 1 &&
    h - kh + 1 >= ph &&
    w - kw + 1 >= pw &&
    convPoolAvailable()
  );
}

/** The op's arguments. */
export interface ConvPoolArgs {
  /** `[n, h, w, c]`, float32. */
  x: tf.Tensor;
  /** `[blocks, kh, kw, c, f]`: example i uses filter i / (n / blocks). */
  filters: tf.Tensor;
  /** `[blocks, f]`, or null for none. */
  biases: tf.Tensor | null;
  poolSize: Pair;
  strides: Pair;
  relu: boolean;
  /**
   * Output channel groups: the output is `[groups·n, qh, qw, f / groups]`, group k of example i
   * at `k·n + i` (stacked variants' outputs laid out per variant).
   */
  groups: number;
}

/** Runs one of the block's forward ops (`groups` output groups, `outputs` outputs). */
function runForward(
  name: string,
  args: Omit<ConvPoolArgs, 'groups'>,
  groups: number,
  outputs: number,
): tf.Tensor[] {
  const backend = tf.backend() as NativeBackend;
  const b = backend.binding;
  const attrs = [
    { name: 'pool', type: b.TF_ATTR_INT, value: [...args.poolSize, ...args.strides] },
    { name: 'relu', type: b.TF_ATTR_BOOL, value: args.relu },
    { name: 'groups', type: b.TF_ATTR_INT, value: groups },
  ];
  const none = args.biases ? undefined : tf.zeros([0]);
  try {
    const inputs = [args.x, args.filters, args.biases ?? (none as tf.Tensor)];
    const out = backend.executeMultipleOutputs(name, attrs, inputs, outputs);
    calls += 1;
    return out;
  } finally {
    none?.dispose();
  }
}

/**
 * `maxPool(act(conv2d(x, filter, 1, 'valid') + bias))` in one op; undefined where the op is
 * not available (the caller then runs TensorFlow's ops).
 */
export function convPool(args: ConvPoolArgs): tf.Tensor | undefined {
  if (!convPoolAvailable() || args.x.dtype !== 'float32') return undefined;
  return runForward('AntifragileConvPool', args, args.groups, 1)[0];
}

/**
 * {@link convPool} with one output group, and where each pooled value came from (int32, shaped
 * like the output): its window position (row-major), plus 256 where the activation there is
 * not positive (ReLU's gradient is 0). TensorFlow's argmax (the first strict maximum of the
 * activated values), for {@link convPoolGrad}. Undefined where the op is not available.
 */
export function convPoolRoute(
  args: Omit<ConvPoolArgs, 'groups'>,
): { y: tf.Tensor; route: tf.Tensor } | undefined {
  if (!convPoolAvailable() || args.x.dtype !== 'float32') return undefined;
  const [y, route] = runForward('AntifragileConvPoolRoute', args, 1, 2);
  return { y, route };
}

/** The arguments of {@link convPoolGrad}. */
export interface ConvPoolGradArgs {
  /** The gradient at the pooled output, `[m, qh, qw, f]`. */
  dy: tf.Tensor;
  /** From {@link convPoolRoute}, `[r, qh, qw, f]`: example i uses route i mod r (copies). */
  route: tf.Tensor;
  /** `[blocks, kh, kw, c, f]`: example i uses filter i / (m / blocks). */
  filters: tf.Tensor;
  poolSize: Pair;
  strides: Pair;
  /** The convolution's input `[h, w]`. */
  inputSize: Pair;
}

/** Whether {@link convPoolGrad} takes this pooling: windows that do not overlap. */
export function convPoolGradFits(poolSize: Pair, strides: Pair): boolean {
  return strides[0] >= poolSize[0] && strides[1] >= poolSize[1] && convPoolAvailable();
}

/**
 * The input gradient of {@link convPoolRoute}'s block: TensorFlow's max-pool gradient into
 * each window's argmax, times ReLU's mask, then the convolution's input gradient as TensorFlow's
 * own `Conv2DBackpropInput` computes it (./narrow-conv.ts), bit for bit, in one pass over the
 * routed values. `[m, h, w, c]`.
 */
export function convPoolGrad(args: ConvPoolGradArgs): tf.Tensor {
  if (!convPoolAvailable()) throw new Error('convPoolGrad: our ops are not loaded');
  const backend = tf.backend() as NativeBackend;
  const b = backend.binding;
  const attrs = [
    { name: 'pool', type: b.TF_ATTR_INT, value: [...args.poolSize, ...args.strides] },
    { name: 'input_size', type: b.TF_ATTR_INT, value: [...args.inputSize] },
  ];
  const dx = backend.executeSingleOutput('AntifragileConvPoolGrad', attrs, [
    args.dy,
    args.route,
    args.filters,
  ]);
  calls += 1;
  return dx;
}
