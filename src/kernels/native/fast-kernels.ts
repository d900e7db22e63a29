import * as tf from '@tensorflow/tfjs';
import type { NativeBackend } from './native-backend';
import { registerNativeAdam, unregisterNativeAdam } from './adam';
import { registerFusedKernels, unregisterFusedKernels } from './fused-ops';
import { overrideKernel, restoreKernel } from './kernel-override';
import { registerReluGradient } from '../gradients/relu';
import { registerNarrowConvKernels, unregisterNarrowConvKernels } from './narrow-conv';
import { loadNativeOps } from './ops-module';
import { registerNativeReluGrad, unregisterNativeReluGrad } from './relu-grad';
import { registerSmallConvKernels, unregisterSmallConvKernels } from './small-conv';

const BACKEND = 'tensorflow';
let original: tf.KernelConfig | undefined;

/** Whether {@link registerFastTensorflowKernels} is in effect. */
export function fastTensorflowKernelsRegistered(): boolean {
  return original !== undefined;
}

/**
 * Faster kernels for tfjs-node's `tensorflow` backend, registered over tfjs-node's own. `Step`
 * with alpha 0 (the ReLU gradient, also inside the fused conv/matMul gradients) becomes
 * `Sign(Relu(x))`: two native ops instead of the six tfjs-node chains (isNaN, greater, ones,
 * fill, where, select), same values, NaN included; measured at 4.5 ms → 0.6 ms on a
 * [100, 26, 26, 16] tensor. Other alphas and dtypes run the original kernel. Also makes tfjs'
 * Adam optimizer update each variable with TensorFlow's fused `ResourceApplyAdam` on this
 * backend (`./adam.ts`: one native op instead of fourteen, same values to float32 rounding),
 * and runs stride-1 convolutions on maps smaller than their kernel, or of one pixel, as one
 * matrix product, depthwise ones on one pixel as an element-wise product (`./small-conv.ts`:
 * only the in-bounds multiply-adds; ResNet-18's and ShuffleNet V2's last stages at CIFAR size),
 * and runs tfjs' fused convolution and matrix product (bias, ReLU) as TensorFlow's own fused
 * kernels (`./fused-ops.ts`: one pass instead of three, same values), and the input gradient of
 * a convolution into few channels with TensorFlow's own kernel instead of oneDNN's
 * (`./narrow-conv.ts`: about twice as fast on a network's stem), and `Relu`'s gradient as
 * TensorFlow's `ReluGrad` (`./relu-grad.ts`: one pass instead of three), and loads our own
 * TensorFlow ops (`./ops-module.ts`: a convolution into few channels with its bias, ReLU and max
 * pooling in one op, `./conv-pool.ts`, which the analysis calls).
 * Idempotent; a no-op when the backend is absent. Returns whether the kernels are in effect.
 */
export function registerFastTensorflowKernels(): boolean {
  if (original) return true;
  if (!tf.findBackend(BACKEND)) return false;
  const stock = overrideKernel('Step', reluStep);
  if (!stock) return false;
  original = stock;
  registerNativeAdam();
  // Before the small-map kernels, which fall back to whatever FusedConv2D was registered before them.
  registerFusedKernels();
  registerNarrowConvKernels();
  registerSmallConvKernels();
  registerNativeReluGrad();
  registerReluGradient();
  loadNativeOps();
  return true;
}

/** `Step` with alpha 0 on float32 as `Sign(Relu(x))`; undefined (tfjs-node's kernel) otherwise. */
function reluStep(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | undefined {
  const x = args.inputs.x as tf.TensorInfo;
  const alpha = (args.attrs as { alpha?: number } | undefined)?.alpha ?? 0;
  if (alpha !== 0 || x.dtype !== 'float32') return undefined;
  const backend = args.backend as NativeBackend;
  const attrs = [
    { name: 'T', type: backend.binding.TF_ATTR_TYPE, value: backend.binding.TF_FLOAT },
  ];
  const relu = backend.executeSingleOutput('Relu', attrs, [x]);
  const step = backend.executeSingleOutput('Sign', attrs, [relu]);
  relu.dispose();
  return step;
}

/** Restores tfjs-node's own kernels (for comparisons). */
export function unregisterFastTensorflowKernels(): void {
  if (!original) return;
  restoreKernel(original);
  original = undefined;
  unregisterNativeAdam();
  unregisterSmallConvKernels();
  unregisterNarrowConvKernels();
  unregisterNativeReluGrad();
  unregisterFusedKernels();
}
