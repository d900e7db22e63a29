import * as tf from '@tensorflow/tfjs';
import { attr, composed, input, type KernelArgs } from './kernel-io';

/** Up to this many batches, a batched product may be a loop of fast single products… */
const MAX_LOOPED_BATCHES = 64;
/** …when each product has at least this many multiply-adds (below, per-call costs dominate). */
const MIN_LOOPED_MACS = 128 * 1024;

function product(dims: number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

/** Makes a tracked tensor that owns the output of a kernel function called directly. */
function own(info: tf.TensorInfo | tf.TensorInfo[]): tf.Tensor {
  if (Array.isArray(info)) throw new Error('BatchMatMul returned several outputs');
  return tf.engine().makeTensorFromTensorInfo(info);
}

/**
 * Builds the `BatchMatMul` replacement. The wasm kernel is fast (XNNPACK) only without
 * transposes and with one batch; otherwise it runs plain loops. The replacement materialises
 * transposes (a fast `Transpose`), folds the batch of `a` into its rows when `b` is shared, and
 * loops over a few large products; many small products stay with the original kernel.
 */
export function makeBatchMatMul(original: tf.KernelFunc): tf.KernelFunc {
  const call = (backend: unknown, a: tf.Tensor, b: tf.Tensor, transposeB: boolean): tf.Tensor =>
    own(
      original({
        inputs: { a, b },
        backend: backend as object,
        attrs: { transposeA: false, transposeB },
      }),
    );
  return (params) => {
    const args = params as unknown as KernelArgs;
    const transposeA = attr<boolean>(args, 'transposeA') === true;
    const transposeB = attr<boolean>(args, 'transposeB') === true;
    const { a: aInfo, b: bInfo } = args.inputs;
    if (aInfo === undefined || bInfo === undefined) throw new Error('BatchMatMul needs a and b');
    const batchA = product(aInfo.shape.slice(0, -2));
    const batchB = product(bInfo.shape.slice(0, -2));
    const fast = !transposeA && !transposeB && batchA === 1 && batchB === 1;
    if (fast || aInfo.dtype !== 'float32' || bInfo.dtype !== 'float32') return original(params);
    const [rowsA, colsA] = aInfo.shape.slice(-2);
    const [m, k] = transposeA ? [colsA, rowsA] : [rowsA, colsA];
    const n = bInfo.shape[bInfo.shape.length - (transposeB ? 2 : 1)];
    const batches = Math.max(batchA, batchB);
    const loop = batches <= MAX_LOOPED_BATCHES && m * k * n >= MIN_LOOPED_MACS;
    // Many small products of equal batches: the original's own loops beat a loop of calls.
    if (batchA === batchB && !loop) return original(params);
    const single = batchA === 1 && batchB === 1;
    if (single && swappedIsCheaper(m, k, n, transposeA, transposeB)) {
      // (a·b)ᵀ = bᵀ·aᵀ: XNNPACK packs its second operand on every call (~4 ns a value); with a
      // large b to transpose and a small a, packing aᵀ instead costs less.
      return composed(args, () => {
        const a = tf.reshape(input(args, 'a'), transposeA ? [k, m] : [m, k]);
        const b = tf.reshape(input(args, 'b'), transposeB ? [n, k] : [k, n]);
        const left = transposeB ? b : swapLastAxes(b);
        const right = transposeA ? a : swapLastAxes(a);
        const product = call(args.backend, left, right, false); // [n, m]
        const outBatch = tf.backend_util.assertAndGetBroadcastShape(
          aInfo.shape.slice(0, -2),
          bInfo.shape.slice(0, -2),
        );
        return tf.reshape(swapLastAxes(product), [...outBatch, m, n]);
      });
    }
    return composed(args, () => {
      let a = input(args, 'a');
      let b = input(args, 'b');
      if (transposeA) a = swapLastAxes(a);
      if (transposeB) b = swapLastAxes(b);
      const [rows, inner] = a.shape.slice(-2);
      const cols = b.shape[b.rank - 1];
      const outBatch = tf.backend_util.assertAndGetBroadcastShape(
        a.shape.slice(0, -2),
        b.shape.slice(0, -2),
      );
      const outShape = [...outBatch, rows, cols];
      const total = product(outBatch);
      if (batchB === 1) {
        // b is shared by every batch: one product with the batches of a stacked as rows.
        const stacked = tf.reshape(a, [total * rows, inner]);
        const flatB = tf.reshape(b, [inner, cols]);
        return tf.reshape(call(args.backend, stacked, flatB, false), outShape);
      }
      const a3 = tf.reshape(broadcast(a, [...outBatch, rows, inner]), [total, rows, inner]);
      const b3 = tf.reshape(broadcast(b, [...outBatch, inner, cols]), [total, inner, cols]);
      if (!loop) return tf.reshape(call(args.backend, a3, b3, false), outShape);
      const bs = tf.unstack(b3);
      const parts = tf.unstack(a3).map((ai, i) => call(args.backend, ai, bs[i], false));
      return tf.reshape(tf.stack(parts), outShape);
    });
  };
}

/**
 * Whether `bᵀ·aᵀ` (then transposed) costs less than `a·b` for an `[m, k]·[k, n]` product with
 * transposed inputs, counting values moved: XNNPACK packs the second operand (about four times a
 * transpose's cost per value) and transposes are materialised.
 */
export function swappedIsCheaper(
  m: number,
  k: number,
  n: number,
  transposeA: boolean,
  transposeB: boolean,
): boolean {
  if (!transposeA && !transposeB) return false; // b may be a weight XNNPACK keeps packed
  const direct = 4 * k * n + (transposeA ? m * k : 0) + (transposeB ? k * n : 0);
  const swapped = 4 * k * m + (transposeB ? 0 : k * n) + (transposeA ? 0 : m * k) + m * n;
  return swapped < 0.8 * direct;
}

/** `x` broadcast to `shape` (no copy when it already has that shape). */
function broadcast(x: tf.Tensor, shape: number[]): tf.Tensor {
  const same = x.rank === shape.length && x.shape.every((d, i) => d === shape[i]);
  return same ? x : tf.broadcastTo(x, shape);
}

/** `x` with its last two axes swapped (a materialised transpose). */
function swapLastAxes(x: tf.Tensor): tf.Tensor {
  const perm = [...x.shape.keys()];
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return tf.transpose(x, perm);
}
