import * as tf from '@tensorflow/tfjs';
import type { NativeBackend } from './native-backend';
import { ourOpsAvailable } from './our-ops';

/**
 * A convolution, its bias, ReLU and max pooling as one op of ours, `AntifragileConvPool` (C++ in
 * ./addon/conv_pool.cc, built by `npm run setup` beside tfjs-node's addon, loaded with the
 * backend by ./ops-module.ts), and the block's input gradient.
 *
 * Why: a LeNet-style block (a 3×3 convolution, ReLU, 2×2 pooling) is memory passes in
 * TensorFlow: the bias, ReLU and pooling each stream the full-size convolution output once
 * more, and a convolution into few input channels runs far below the machine's multiply rate.
 * The batched sweep makes those outputs large (every filtered variant of the layer at once). The
 * op computes only the convolution outputs the pooling reads, in registers (AVX-512 or AVX2),
 * and writes the pooled values. Measured on this project's (Intel) machine with
 * `node dist/bench/tools/conv-pool.js`: 256 digits into 73 variants × 16 channels, pooled and
 * laid out per variant, 36.8 ms against 259 ms for TensorFlow's ops; 1,024 inputs of 13×13×16
 * into 32 channels, 3.74 against 10.9 ms.
 *
 * The values are TensorFlow's, bit for bit: its CPU `Conv2D` sums each output as a chain of
 * fused multiply-adds over the taps in (row, column, channel) order from 0 (read off its outputs
 * for 1–256 input channels and 3×3 and 5×5 filters), which the op repeats; the bias is one
 * float32 addition, ReLU `v > 0 ? v : 0`, and the maximum of the window commutes exactly with
 * both. The gradient repeats TensorFlow's `Conv2DBackpropInput` for fewer than 8 input channels
 * (its own kernel, ./narrow-conv.ts); for more, oneDNN computes it in another order, so the op
 * only spreads the pooled gradient back (`AntifragileRouteScatter`) and TensorFlow's own
 * kernel does the rest. `test/conv-pool.test.ts` checks both against TensorFlow's ops.
 */

type Pair = [number, number];

/** Input channels below which our gradient op repeats TensorFlow's input-gradient order. */
const FUSED_GRAD_CHANNELS = 8;
/** Filter taps (kh·kw·c) and sides up to which TensorFlow's order is checked (beyond 8 channels). */
const MAX_TAPS = 2304;
const MAX_SIDE = 5;
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
  const checked =
    c < FUSED_GRAD_CHANNELS || (kh * kw * c <= MAX_TAPS && Math.max(kh, kw) <= MAX_SIDE);
  return (
    checked &&
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
 * `Conv2DBackpropInput` computes it, bit for bit. Into fewer than 8 channels one pass of ours
 * over the routed values (./narrow-conv.ts has that order); into more, the routed values spread
 * back by our op and TensorFlow's own kernel, once per filter set. `[m, h, w, c]`.
 */
export function convPoolGrad(args: ConvPoolGradArgs): tf.Tensor {
  if (!convPoolAvailable()) throw new Error('convPoolGrad: our ops are not loaded');
  const backend = tf.backend() as NativeBackend;
  const b = backend.binding;
  const pool = { name: 'pool', type: b.TF_ATTR_INT, value: [...args.poolSize, ...args.strides] };
  const [blocks, kh, kw, c] = args.filters.shape;
  if (c < FUSED_GRAD_CHANNELS) {
    const size = { name: 'input_size', type: b.TF_ATTR_INT, value: [...args.inputSize] };
    const inputs = [args.dy, args.route, args.filters];
    const dx = backend.executeSingleOutput('AntifragileConvPoolGrad', [pool, size], inputs);
    calls += 1;
    return dx;
  }
  const [h, w] = args.inputSize;
  const convSize = { name: 'conv_size', type: b.TF_ATTR_INT, value: [h - kh + 1, w - kw + 1] };
  return tf.tidy(() => {
    const spread = backend.executeSingleOutput(
      'AntifragileRouteScatter',
      [pool, convSize],
      [args.dy, args.route],
    );
    const per = spread.shape[0] / blocks;
    const parts = blocks === 1 ? [spread] : tf.split(spread, blocks, 0);
    const filters = tf.unstack(args.filters, 0);
    const dx = parts.map((part, k) =>
      tf.conv2dTranspose(
        part as tf.Tensor4D,
        filters[k] as tf.Tensor4D,
        [per, h, w, c],
        1,
        'valid',
      ),
    );
    calls += 1;
    return dx.length === 1 ? dx[0] : tf.concat(dx, 0);
  });
}
