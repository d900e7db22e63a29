import * as tf from '@tensorflow/tfjs';
import { overrideKernel, restoreKernel } from './kernel-override';
import type { NativeBackend } from './native-backend';

/**
 * tfjs' fused convolution and matrix product (`FusedConv2D`, `_FusedMatMul`: bias and
 * activation after the product, what tfjs-layers' Conv2D and Dense layers run) as TensorFlow's
 * own fused kernels, `_FusedConv2D` and `_FusedMatMul`: one native op that adds the bias and
 * applies the activation while the product's output is still in cache, instead of tfjs-node's
 * three (product, `Add`, activation), each a pass over the whole output. Same values: the bias
 * is added to the finished sum and the activation applied after, as the separate ops do.
 *
 * TensorFlow's fused ops take their `fused_ops` as a list of strings and their `TArgs` as a list
 * of types, which tfjs-node's binding only accepts once `scripts/setup/binding-patch.js` has
 * patched it (our setup compiles the addon with that patch). On an unpatched binding (tfjs-node
 * installed another way) a probe at registration fails and tfjs-node's kernels stay.
 */

type KernelArgs = Parameters<tf.KernelFunc>[0];

const BACKEND = 'tensorflow';

/** tfjs activation names → TensorFlow's fused op names (the ones its CPU kernels implement). */
const ACTIVATIONS: Record<string, string | undefined> = {
  linear: undefined,
  relu: 'Relu',
  relu6: 'Relu6',
};

/** Input channels from which the fused convolution is the faster (see {@link fusedConv}). */
const MIN_FUSED_CHANNELS = 8;
/** Below that, output channels from which it is the faster again (see {@link fusedConv}). */
const MIN_FUSED_OUTPUTS = 64;

const originals = new Map<string, tf.KernelConfig>();
let fusedCalls = 0;

/** Whether {@link registerFusedKernels} is in effect. */
export function fusedKernelsRegistered(): boolean {
  return originals.size > 0;
}

/** How many products the fused kernels ran (tests check they are used). */
export function fusedKernelCalls(): number {
  return fusedCalls;
}

function fusedOps(activation: unknown): string[] | undefined {
  const name = (activation as string | undefined) ?? 'linear';
  if (!(name in ACTIVATIONS)) return undefined;
  const op = ACTIVATIONS[name];
  return op ? ['BiasAdd', op] : ['BiasAdd'];
}

/** Attributes shared by `_FusedConv2D` and `_FusedMatMul`. */
function commonAttrs(backend: NativeBackend, ops: string[]): unknown[] {
  const b = backend.binding;
  return [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'num_args', type: b.TF_ATTR_INT, value: 1 },
    { name: 'fused_ops', type: b.TF_ATTR_STRING, value: ops },
    { name: 'epsilon', type: b.TF_ATTR_FLOAT, value: 0.0001 },
    { name: 'leakyrelu_alpha', type: b.TF_ATTR_FLOAT, value: 0.2 },
  ];
}

function execute(
  backend: NativeBackend,
  name: string,
  attrs: unknown[],
  inputs: tf.TensorInfo[],
): tf.Tensor {
  const [out] = backend.executeMultipleOutputs(name, attrs, inputs, 1);
  fusedCalls += 1;
  return out;
}

/** Whether the binding takes the fused ops' list attributes: one tiny `_FusedMatMul`. */
function bindingTakesLists(): boolean {
  const backend = tf.findBackend(BACKEND) as NativeBackend | null;
  if (!backend) return false;
  const one = tf.tensor2d([[1]]);
  const bias = tf.tensor1d([1]);
  try {
    const out = execute(backend, '_FusedMatMul', matMulAttrs(backend, ['BiasAdd'], false, false), [
      one,
      one,
      bias,
    ]);
    const ok = out.dataSync()[0] === 2;
    out.dispose();
    return ok;
  } catch {
    return false;
  } finally {
    tf.dispose([one, bias]);
    fusedCalls = 0;
  }
}

function matMulAttrs(
  backend: NativeBackend,
  ops: string[],
  transposeA: boolean,
  transposeB: boolean,
): unknown[] {
  const b = backend.binding;
  return [
    ...commonAttrs(backend, ops),
    { name: 'transpose_a', type: b.TF_ATTR_BOOL, value: transposeA },
    { name: 'transpose_b', type: b.TF_ATTR_BOOL, value: transposeB },
  ];
}

function fusedConv(args: KernelArgs): tf.Tensor | undefined {
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<
    string,
    tf.TensorInfo | undefined
  >;
  const attrs = args.attrs as Record<string, unknown>;
  const ops = fusedOps(attrs.activation);
  if (!x || !filter || !bias || preluActivationWeights || !ops) return undefined;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || bias.dtype !== 'float32') {
    return undefined;
  }
  const pad = attrs.pad;
  if ((pad !== 'same' && pad !== 'valid') || attrs.dimRoundingMode !== undefined) return undefined;
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || x.shape.length !== 4) return undefined;
  // Measured: with few input and output channels TensorFlow's fused kernel is slower than its
  // plain convolution plus the two passes (24.4 against 15.1 µs/example on [28, 28, 1] → 16
  // channels), with 16 inputs it is faster (49 against 58 ms on [2304, 13, 13, 16] → 32), and
  // with one input into many outputs too (the analysis' stacked variants: 48 against 93 µs/example
  // into 128 channels, 358 against 532 into 688; even at 64).
  if (x.shape[3] < MIN_FUSED_CHANNELS && filter.shape[3] < MIN_FUSED_OUTPUTS) return undefined;
  const pair = (v: unknown): [number, number] =>
    Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number];
  const [sh, sw] = pair(attrs.strides ?? 1);
  const [dh, dw] = pair(attrs.dilations ?? 1);
  const backend = args.backend as NativeBackend;
  const b = backend.binding;
  const convAttrs = [
    ...commonAttrs(backend, ops),
    { name: 'TArgs', type: b.TF_ATTR_TYPE, value: [b.TF_FLOAT] },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, sh, sw, 1] },
    { name: 'padding', type: b.TF_ATTR_STRING, value: pad.toUpperCase() },
    { name: 'explicit_paddings', type: b.TF_ATTR_INT, value: [] },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'dilations', type: b.TF_ATTR_INT, value: [1, dh, dw, 1] },
    { name: 'use_cudnn_on_gpu', type: b.TF_ATTR_BOOL, value: true },
  ];
  return execute(backend, '_FusedConv2D', convAttrs, [x, filter, bias]);
}

function fusedMatMul(args: KernelArgs): tf.Tensor | undefined {
  const {
    a,
    b: matrix,
    bias,
    preluActivationWeights,
  } = args.inputs as Record<string, tf.Tensor | undefined>;
  const attrs = args.attrs as Record<string, unknown>;
  const ops = fusedOps(attrs.activation);
  if (!a || !matrix || !bias || preluActivationWeights || !ops || bias.rank !== 1) return undefined;
  // tfjs hands 2-D products over as batches of one: [1, m, k] × [1, k, n].
  const single = (t: tf.Tensor) => t.rank === 2 || (t.rank === 3 && t.shape[0] === 1);
  if (!single(a) || !single(matrix)) return undefined;
  if (a.dtype !== 'float32' || matrix.dtype !== 'float32' || bias.dtype !== 'float32') {
    return undefined;
  }
  const backend = args.backend as NativeBackend;
  const transposeA = attrs.transposeA === true;
  const transposeB = attrs.transposeB === true;
  const matAttrs = matMulAttrs(backend, ops, transposeA, transposeB);
  return tf.tidy(() => {
    const a2 = tf.reshape(a, a.shape.slice(-2));
    const b2 = tf.reshape(matrix, matrix.shape.slice(-2));
    const out = execute(backend, '_FusedMatMul', matAttrs, [a2, b2, bias]);
    return a.rank === 3 ? tf.reshape(out, [1, ...out.shape]) : out;
  });
}

/**
 * Registers the fused kernels over tfjs-node's `FusedConv2D` and `_FusedMatMul` (calls they do
 * not cover — no bias, another activation, explicit padding, batched products — run the
 * original kernel). Returns whether they are registered.
 */
export function registerFusedKernels(): boolean {
  if (originals.size > 0) return true;
  if (!bindingTakesLists()) return false;
  const kernels: [string, (args: KernelArgs) => tf.Tensor | undefined][] = [
    ['FusedConv2D', fusedConv],
    ['_FusedMatMul', fusedMatMul],
  ];
  for (const [name, fused] of kernels) {
    const original = overrideKernel(name, fused);
    if (original) originals.set(name, original);
  }
  return originals.size > 0;
}

/** Restores tfjs-node's own fused kernels (for comparisons). */
export function unregisterFusedKernels(): void {
  originals.forEach(restoreKernel);
  originals.clear();
}
