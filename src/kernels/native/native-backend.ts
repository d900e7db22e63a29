import * as tf from '@tensorflow/tfjs';

/** A TensorFlow tensor handle as the binding returns it (`dtype` a `TF_*` code). */
export interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}

/**
 * The slice of tfjs-node's `NodeJSKernelBackend` (the `tensorflow` backend) that our native
 * kernels and layers use: it is not exported with types. `binding` is the addon itself.
 */
export interface NativeBackend extends tf.KernelBackend {
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_INT: number;
    TF_ATTR_FLOAT: number;
    TF_ATTR_BOOL: number;
    TF_ATTR_STRING: number;
    TF_ATTR_SHAPE: number;
    TF_FLOAT: number;
    TF_INT32: number;
    TF_INT64: number;
    executeOp(name: string, attrs: unknown[], inputs: number[], outputs: number): TensorMetadata[];
    createTensor(shape: number[], dtype: number, values: Float32Array): number;
    tensorDataSync(id: number): Float32Array;
    deleteTensor(id: number): void;
  };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.Tensor;
  executeMultipleOutputs(
    name: string,
    attrs: unknown[],
    inputs: tf.TensorInfo[],
    outputs: number,
  ): tf.Tensor[];
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  createOutputTensor(metadata: TensorMetadata): tf.Tensor;
}
