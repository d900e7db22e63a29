import * as tf from '@tensorflow/tfjs';
import { syncMoments } from '../native/adam';
import {
  ensureMoments,
  finishAdamStep,
  float32Updatable,
  gradientList,
  type AdamFields,
  type Gradients,
} from '../optimizers/adam-internals';
import { attr, heapAddress, isHeapBackend, type KernelArgs } from './kernel-io';
import { simdKernels } from './simd';

/**
 * Our kernel for one Adam step of one variable (registered for `wasm` only): inputs `w`, `m`,
 * `v`, `g` (float32, one shape) and the scalars `accBeta1`, `accBeta2` (`β1ᵗ`, `β2ᵗ`); attributes
 * `beta1`, `beta2`, `epsilon`, `learningRate`; outputs the new `w`, `m` and `v`.
 */
export const ADAM_KERNEL = 'AntifragileAdam';

/** {@link ADAM_KERNEL}: one pass of our SIMD kernel (kernels.wat `adam`) over the variable. */
export function adamStep(args: KernelArgs): tf.TensorInfo[] {
  const { w, m, v, g, accBeta1, accBeta2 } = args.inputs;
  if (!w || !m || !v || !g || !accBeta1 || !accBeta2) {
    throw new Error(`${ADAM_KERNEL} needs w, m, v, g, accBeta1 and accBeta2`);
  }
  const backend: unknown = args.backend;
  const simd = simdKernels(backend);
  if (simd === undefined || !isHeapBackend(backend)) {
    throw new Error(`${ADAM_KERNEL} runs on the wasm backend with our SIMD kernels only`);
  }
  for (const t of [m, v, g]) {
    if (t.dtype !== 'float32' || !tf.util.arraysEqual(t.shape, w.shape) || w.dtype !== 'float32') {
      throw new Error(`${ADAM_KERNEL}: w, m, v and g must be float32 of one shape`);
    }
  }
  const scalar = (t: tf.TensorInfo) => (backend.typedArrayFromHeap(t) as Float32Array)[0];
  const f32 = Math.fround;
  const beta1 = attr<number>(args, 'beta1');
  const beta2 = attr<number>(args, 'beta2');
  const outputs = [w, m, v].map((t) => backend.makeOutput(t.shape.slice(), 'float32'));
  const [w1, m1, v1] = outputs.map((t) => heapAddress(backend, t));
  // The float32 scalars tfjs' Adam makes of these numbers: 1 − β1 is computed in JS first.
  simd.adam(
    heapAddress(backend, w),
    heapAddress(backend, m),
    heapAddress(backend, v),
    heapAddress(backend, g),
    w1,
    m1,
    v1,
    tf.util.sizeFromShape(w.shape),
    f32(beta1),
    f32(1 - beta1),
    f32(beta2),
    f32(1 - beta2),
    f32(1 - scalar(accBeta1)),
    f32(1 - scalar(accBeta2)),
    f32(attr<number>(args, 'epsilon')),
    f32(-attr<number>(args, 'learningRate')),
  );
  return outputs;
}

/**
 * tfjs' `AdamOptimizer.applyGradients` on wasm as one {@link ADAM_KERNEL} call per variable
 * instead of about fourteen element-wise ops, each with its own pass over memory and tfjs'
 * per-op cost (~20 ms of a 0.35 s epoch of the bench's CNN). Same values: the kernel repeats
 * tfjs' float32 operations in its order. The state stays tfjs' own (`m` and `v` variables named
 * as tfjs names them, `β1ᵗ`, `β2ᵗ`, iterations), so saving, `getWeights` and other backends see
 * the usual optimizer. False (nothing done) when a variable or gradient is not float32.
 */
function wasmApply(optimizer: tf.AdamOptimizer, gradients: Gradients): boolean {
  if (!float32Updatable(gradients)) return false;
  // Moments a native step left in TensorFlow resources come back first (no-op otherwise).
  syncMoments(optimizer);
  const f = optimizer as unknown as AdamFields;
  const { names, gradientOf } = gradientList(gradients);
  const registered = tf.engine().registeredVariables;
  const attrs = {
    beta1: f.beta1,
    beta2: f.beta2,
    epsilon: f.epsilon,
    learningRate: f.learningRate,
  };
  tf.tidy(() => {
    names.forEach((name, i) => {
      const value = registered[name];
      // As tfjs: the moments are created at the first step, even for a null gradient.
      const [m, v] = ensureMoments(f, name, i, value);
      const g = gradientOf(name, i);
      if (g == null) return;
      const inputs = { w: value, m, v, g, accBeta1: f.accBeta1, accBeta2: f.accBeta2 };
      const [w1, m1, v1] = tf.engine().runKernel(ADAM_KERNEL, inputs, attrs) as tf.Tensor[];
      m.assign(m1);
      v.assign(v1);
      value.assign(w1);
    });
  });
  finishAdamStep(f);
  return true;
}

type ApplyGradients = (this: tf.AdamOptimizer, gradients: Gradients) => void;

/** Our `applyGradients` and the one it wraps, while installed. */
let installed: { ours: ApplyGradients; previous: ApplyGradients } | undefined;

/**
 * Makes tfjs' Adam update each variable with {@link ADAM_KERNEL} whenever the active backend is
 * `wasm` with our kernels registered; every other backend keeps the method this wraps (tfjs' own,
 * or our native one). tfjs' optimizers are one class for the whole process, so this patches the
 * class; the values are tfjs' own. Idempotent.
 */
export function registerWasmAdam(): void {
  const proto = tf.AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients };
  if (installed && proto.applyGradients === installed.ours) return;
  const previous = proto.applyGradients;
  const ours: ApplyGradients = function (this: tf.AdamOptimizer, gradients: Gradients) {
    const onWasm =
      tf.getBackend() === 'wasm' &&
      tf.getKernel(ADAM_KERNEL, 'wasm') !== undefined &&
      simdKernels(tf.backend()) !== undefined;
    if (onWasm && wasmApply(this, gradients)) return;
    previous.call(this, gradients);
  };
  proto.applyGradients = ours;
  installed = { ours, previous };
}

/** Restores the `applyGradients` that {@link registerWasmAdam} wrapped (if still ours). */
export function unregisterWasmAdam(): void {
  const proto = tf.AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients };
  if (installed && proto.applyGradients === installed.ours)
    proto.applyGradients = installed.previous;
  installed = undefined;
}

/** True while tfjs' Adam goes through {@link registerWasmAdam}'s method. */
export function wasmAdamRegistered(): boolean {
  const proto = tf.AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients };
  return installed !== undefined && proto.applyGradients === installed.ours;
}
