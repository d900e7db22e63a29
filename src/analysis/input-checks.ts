import * as tf from '@tensorflow/tfjs';

/**
 * Value checks of `analyze()`'s input, run before the model is touched: input a caller cannot
 * mean (labels that are no class, non-finite inputs or weights) is an error naming what is wrong.
 */

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof tf.Tensor) return `a ${value.dtype} tensor`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return `${typeof value} ${String(value)}`;
}

/** `model` must be a tfjs-layers model. */
export function checkModel(model: unknown): asserts model is tf.LayersModel {
  if (!(model instanceof tf.LayersModel)) {
    throw new Error(
      `analyze: argument 'model' must be a tf.LayersModel (tf.model, tf.sequential or tf.loadLayersModel); got ${describe(model)}`,
    );
  }
}

/** `data` must be an object of two tensors, float32 inputs. */
export function checkDataArgument(data: unknown): asserts data is { xs: tf.Tensor; ys: tf.Tensor } {
  const d = data as { xs?: unknown; ys?: unknown } | null | undefined;
  if (!d || typeof d !== 'object' || !(d.xs instanceof tf.Tensor) || !(d.ys instanceof tf.Tensor)) {
    throw new Error(
      `analyze: argument 'data' must be { xs: tf.Tensor, ys: tf.Tensor }; got ${describe(data)}` +
        (d && typeof d === 'object' ? ` with xs: ${describe(d.xs)}, ys: ${describe(d.ys)}` : ''),
    );
  }
  if (d.xs.dtype !== 'float32') {
    throw new Error(
      `analyze: data.xs must be float32 (the model's input); got ${d.xs.dtype}: convert it, e.g. xs.toFloat()`,
    );
  }
}

/** Index of the first `true` in a boolean mask, or −1. */
function firstTrue(mask: tf.Tensor): number {
  return tf.tidy(() => {
    const flat = mask.reshape([-1]);
    if (!flat.any().dataSync()[0]) return -1;
    return flat.toInt().argMax().dataSync()[0];
  });
}

/** `xs` must be finite. */
export function checkInputsFinite(xs: tf.Tensor): void {
  const bad = tf.tidy(() => firstTrue(xs.isFinite().logicalNot()));
  if (bad < 0) return;
  const perExample = xs.size / xs.shape[0];
  const value = tf.tidy(() => xs.reshape([-1]).slice(bad, 1).dataSync()[0]);
  throw new Error(
    `analyze: data.xs holds a non-finite value (${value}) in example ${Math.floor(bad / perExample)}; inputs must be finite`,
  );
}

/** Labels: class ids (integers in [0, classes)) or one-hot rows (one 1, the rest 0). */
export function checkLabels(ys: tf.Tensor, classes: number): void {
  const values = ys.dataSync();
  if (ys.rank === 1 || ys.shape[1] === 1) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!Number.isInteger(v) || v < 0 || v >= classes) {
        throw new Error(
          `analyze: data.ys holds class ids, and the id of example ${i} is ${parseFloat(v.toPrecision(7))}; expected an integer in 0–${classes - 1}`,
        );
      }
    }
    return;
  }
  for (let i = 0; i < ys.shape[0]; i++) {
    const row = Array.from(values.subarray(i * classes, (i + 1) * classes));
    const ones = row.filter((v) => v === 1).length;
    const zeros = row.filter((v) => v === 0).length;
    if (ones !== 1 || zeros !== classes - 1) {
      const shown = row.length > 12 ? `[${row.slice(0, 12).join(', ')}, …]` : `[${row.join(', ')}]`;
      throw new Error(
        `analyze: data.ys row ${i} is not one-hot (one 1, the other ${classes - 1} entries 0); got ${shown}`,
      );
    }
  }
}

/** Every weight of the model (analysed or not) must be finite. */
export function checkWeightsFinite(model: tf.LayersModel): void {
  const weights = model.weights;
  if (weights.length === 0) return;
  const finite = tf.tidy(() =>
    tf.stack(weights.map((w) => w.read().isFinite().all().toInt())).dataSync(),
  );
  const bad = finite.findIndex((ok) => ok === 0);
  if (bad < 0) return;
  const value = weights[bad].read();
  const index = tf.tidy(() => firstTrue(value.isFinite().logicalNot()));
  const found = tf.tidy(() => value.reshape([-1]).slice(index, 1).dataSync()[0]);
  throw new Error(
    `analyze: weight '${weights[bad].name}' has a non-finite value (${found}) at flat index ${index}; ` +
      'every weight of the model must be finite, analysed or not',
  );
}
