import * as tf from '@tensorflow/tfjs';

/** The part of a tfjs backend our composed kernels rely on. */
export interface RefCountedBackend {
  /** Adds one reference to the data of `dataId` (kept alive until released that many times). */
  incRef(dataId: tf.DataId): void;
  /** Copies the values of `dataId` out of the backend. */
  readSync(dataId: tf.DataId): tf.BackendValues;
}

/** What a kernel function receives, with its backend typed as far as we use it. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: RefCountedBackend;
  attrs?: tf.NamedAttrMap;
}

/**
 * The input `name` of a kernel call as a `Tensor`. The engine passes tensors; a bare
 * `TensorInfo` (a kernel calling another one directly) is wrapped in a tensor that holds its own
 * reference to the data, so disposing the wrapper never frees the caller's data.
 */
export function input<R extends tf.Rank>(args: KernelArgs, name: string): tf.Tensor<R> {
  const info = args.inputs[name];
  if (info === undefined) throw new Error(`kernel input '${name}' is missing`);
  if (info instanceof tf.Tensor) return info as tf.Tensor<R>;
  args.backend.incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
}

/** The attribute `name` of a kernel call, typed by the caller. */
export function attr<T>(args: KernelArgs, name: string): T {
  return (args.attrs ?? {})[name] as unknown as T;
}

/**
 * Hands a tensor computed inside a kernel over to the engine as the kernel's output: the data
 * gets one more reference, the tensor object is disposed (so `numTensors` stays flat), and the
 * engine wraps the returned `TensorInfo` in the tensor it gives the caller.
 */
export function handOver(backend: RefCountedBackend, result: tf.Tensor): tf.TensorInfo {
  const info: tf.TensorInfo = {
    dataId: result.dataId,
    shape: result.shape.slice(),
    dtype: result.dtype,
  };
  backend.incRef(result.dataId);
  result.dispose();
  return info;
}

/**
 * Runs `compute` in a `tf.tidy` and hands its result over as a kernel output
 * (see {@link handOver}); every intermediate tensor is freed.
 */
export function composed(args: KernelArgs, compute: () => tf.Tensor): tf.TensorInfo {
  const result = tf.tidy(compute);
  return handOver(args.backend, result);
}

/** Backends that expose their memory (wasm): kernels read inputs and write outputs in place. */
export interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of the data in the backend's memory; invalid once the memory grows (allocate first). */
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** True when `backend` exposes its memory (see {@link HeapBackend}). */
export function isHeapBackend(backend: unknown): backend is HeapBackend {
  const b = backend as Partial<HeapBackend>;
  return typeof b.makeOutput === 'function' && typeof b.typedArrayFromHeap === 'function';
}

/**
 * The byte address of `info`'s data in a {@link HeapBackend}'s memory, as our SIMD kernels take
 * it. Unlike a view, it stays valid when the memory grows.
 */
export function heapAddress(backend: HeapBackend, info: tf.TensorInfo): number {
  return backend.typedArrayFromHeap(info).byteOffset;
}
