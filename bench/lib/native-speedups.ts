import * as tf from '@tensorflow/tfjs';

/** The slice of tfjs-node's `NodeJSKernelBackend` these kernels use (it is not exported typed). */
interface NativeBackend extends tf.KernelBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.Tensor;
}

const BACKEND = 'tensorflow';

/**
 * Faster kernels for tfjs-node's `tensorflow` backend, registered over tfjs-node's own:
 * - `Step` with alpha 0 (the ReLU gradient, and the fused conv/matMul gradients) as
 *   `Sign(Relu(x))`: two native ops instead of six (isNaN, greater, ones, fill, where, select);
 *   same values, NaN included.
 * Returns a function that restores the original kernels. A no-op when the backend is absent.
 */
export function registerFastTensorflowKernels(): () => void {
  if (!tf.findBackend(BACKEND)) return () => undefined;
  const original = tf.getKernel('Step', BACKEND);
  if (!original) return () => undefined;
  tf.unregisterKernel('Step', BACKEND);
  tf.registerKernel({
    kernelName: 'Step',
    backendName: BACKEND,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const alpha = (args.attrs as { alpha?: number } | undefined)?.alpha ?? 0;
      if (alpha !== 0 || x.dtype !== 'float32') return original.kernelFunc(args);
      const backend = args.backend as NativeBackend;
      const attrs = [
        { name: 'T', type: backend.binding.TF_ATTR_TYPE, value: backend.binding.TF_FLOAT },
      ];
      const relu = backend.executeSingleOutput('Relu', attrs, [x]);
      const step = backend.executeSingleOutput('Sign', attrs, [relu]);
      relu.dispose();
      return step;
    },
  });
  return () => {
    tf.unregisterKernel('Step', BACKEND);
    tf.registerKernel(original);
  };
}
