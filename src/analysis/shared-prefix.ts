import * as tf from '@tensorflow/tfjs';
import { convPoolGrad, convPoolRoute } from '../kernels/native/conv-pool';
import { maxPoolArgmax, maxPoolGradFromArgmax } from '../kernels/native/max-pool-argmax';
import { inputGradientFactor } from '../kernels/gradients/batch-norm';
import { reluScaleGradient } from '../kernels/native/batch-norm';
import { applyBatchNormBlock, batchNormBlockFits, batchNormBlocks } from './batch-norm-block';
import { copies, isPlainRelu, pair, perExample, sameInputShapes } from './blocks';
import { convPoolPairs, convPoolStepShape, ownWeights } from './conv-pool-block';
import { paddedConvInputGrad, paddedConvPairs, paddingOf, type Padding } from './padded-conv';
import type { KernelLayer } from './graph';

/**
 * The layers before an ablated one, run once for many copies of the same inputs.
 *
 * With `regenerate: true` the batched sweep attacks `count` filtered models at once: an input
 * gradient over `count` copies of one batch. The layers upstream of the ablated one are not
 * filtered and see the same clean inputs in every copy, so their forward pass is the same in
 * every copy: it is computed once, on one copy, and repeated at the frontier. Their backward pass
 * is linear in the incoming gradient, about the same point for every copy, and runs on all
 * copies with the same ops tfjs' own gradients run, so the values are the same: convolutions,
 * dense layers and ReLU from the one copy's ReLU masks, batch norm (inference) from its
 * variance and scale, max pooling from the one copy's argmax (or its inputs and outputs repeated
 * per copy), padding, add, flatten and dropout. A prefix with any other layer is not handled
 * (the caller then runs the whole graph on every copy).
 */

/** One call of a layer in the prefix, in graph order, as the graph runner sees it. */
export interface PrefixNode {
  layer: tf.layers.Layer;
  inputs: { id: number }[];
  outputs: { id: number }[];
}

/** How the graph runner computes a node (the same ops as its whole-graph passes). */
export type ApplyNode = (node: PrefixNode, args: tf.Tensor[]) => tf.Tensor;

type Apply = (args: tf.Tensor[]) => tf.Tensor;

/** A layer's forward pass on one copy (its output, what backward needs) and its backward step. */
interface Step {
  forward(args: tf.Tensor[]): { y: tf.Tensor; save: tf.Tensor[] };
  /** The gradients of the layer's inputs on `count` copies, one per input. */
  backward(dy: tf.Tensor, saved: tf.Tensor[], count: number): tf.Tensor[];
}

/** `dy` (count copies) times `mask` (one copy), copy by copy. */
function maskCopies(dy: tf.Tensor, mask: tf.Tensor, count: number): tf.Tensor {
  const blocks = tf.reshape(dy, [count, ...mask.shape]);
  return tf.reshape(tf.mul(blocks, mask), dy.shape);
}

type Shape4 = [number, number, number, number];

/**
 * A Conv2D or Dense layer with a linear or ReLU activation: forward as the graph runner computes
 * it, backward as tfjs' gradients of those ops (ReLU: times step(pre-activation); product: the
 * transposed product with the kernel), the mask taken from the one copy.
 */
function productStep(layer: tf.layers.Layer, apply: Apply, folded?: Padding): Step | undefined {
  const cls = layer.getClassName();
  const own = layer as unknown as KernelLayer;
  const config = layer.getConfig();
  const activation = own.activation?.getClassName() ?? 'linear';
  const kernel = own.kernel;
  if (!kernel || (activation !== 'relu' && activation !== 'linear')) return undefined;
  if (cls === 'Conv2D') {
    const dilation = pair(config.dilationRate ?? 1);
    if (config.dataFormat !== 'channelsLast' || dilation[0] !== 1 || dilation[1] !== 1) {
      return undefined;
    }
  } else if (cls !== 'Dense') {
    return undefined;
  }
  const strides = pair(config.strides ?? 1);
  const padding = config.padding as 'same' | 'valid';
  return {
    forward([x]) {
      const y = apply([x]);
      // ReLU's gradient is dy·step(pre); pre > 0 exactly where the output is > 0.
      return { y, save: activation === 'relu' ? [x, tf.step(y)] : [x] };
    },
    backward(dy, [x, mask], count) {
      const g = mask ? maskCopies(dy, mask, count) : dy;
      if (cls === 'Dense') {
        return [tf.matMul(g as tf.Tensor2D, kernel.read() as tf.Tensor2D, false, true)];
      }
      const [n, h, w, c] = x.shape;
      const filter = kernel.read() as tf.Tensor4D;
      if (!folded) {
        const shape: Shape4 = [count * n, h, w, c];
        return [tf.conv2dTranspose(g as tf.Tensor4D, filter, shape, strides, padding)];
      }
      // With the ZeroPadding2D before this layer folded in: into its unpadded input.
      const [[top, bottom], [left, right]] = folded;
      const shape: Shape4 = [count * n, h - top - bottom, w - left - right, c];
      return [paddedConvInputGrad(g as tf.Tensor4D, filter, shape, strides, folded)];
    },
  };
}

/** A ReLU layer (no cap, no threshold): the mask of its one-copy output. */
function reluStep(layer: tf.layers.Layer, apply: Apply): Step | undefined {
  if (!isPlainRelu(layer)) return undefined;
  return {
    forward([x]) {
      const y = apply([x]);
      return { y, save: [tf.step(y)] };
    },
    backward: (dy, [mask], count) => [maskCopies(dy, mask, count)],
  };
}

/**
 * Max pooling. On tfjs-node the one copy's argmax is found in the forward pass and each backward
 * pass scatters into it, repeated per copy (`maxPoolGradFromArgmax`: same values, about a fifth
 * of the time); elsewhere TensorFlow's MaxPoolGrad (what tfjs' gradient runs), its inputs
 * repeated per copy.
 */
function poolStep(layer: tf.layers.Layer, apply: Apply): Step | undefined {
  const config = layer.getConfig();
  if (config.dataFormat !== 'channelsLast') return undefined;
  const filterSize = pair(config.poolSize);
  const strides = pair(config.strides ?? config.poolSize);
  const pad = config.padding as 'same' | 'valid';
  return {
    forward([x]) {
      const y = apply([x]);
      const argmax = maxPoolArgmax(x, filterSize, strides, pad);
      return { y, save: argmax ? [x, argmax] : [x, y] };
    },
    backward(dy, [x, saved], count) {
      const shape = [count * x.shape[0], ...x.shape.slice(1)];
      // `saved` is the argmax (int32) where forward found one, else the pooled output.
      if (saved.dtype === 'int32') {
        return [maxPoolGradFromArgmax(dy, copies(saved, count), shape, filterSize, strides, pad)];
      }
      const inputs = { dy, input: copies(x, count), output: copies(saved, count) };
      return [
        tf.engine().runKernel('MaxPoolGrad', inputs, { filterSize, strides, pad }) as tf.Tensor,
      ];
    },
  };
}

/** The fields of a BatchNormalization layer that its input gradient reads. */
interface NormFields {
  movingVariance?: tf.LayerVariable;
  gamma?: tf.LayerVariable | null;
}

/**
 * A batch norm's input gradient factor γ/√(var + ε), by the ops of the lean BatchNorm gradient
 * (src/kernels/gradients/batch-norm.ts). Call within a tidy.
 */
function normFactor(layer: tf.layers.Layer): tf.Tensor {
  const own = layer as unknown as Required<NormFields>;
  const epsilon = layer.getConfig().epsilon as number;
  return inputGradientFactor(own.movingVariance.read(), epsilon, own.gamma?.read());
}

/** BatchNormalization in inference (tf.batchNorm on the last axis): dy·(γ/√(var + ε)). */
function batchNormStep(layer: tf.layers.Layer, apply: Apply): Step | undefined {
  const config = layer.getConfig();
  const axis = config.axis as number;
  const rank = (layer.input as tf.SymbolicTensor).rank;
  if (!(layer as unknown as NormFields).movingVariance || (axis !== -1 && axis !== rank - 1)) {
    return undefined;
  }
  return {
    forward: ([x]) => ({ y: apply([x]), save: [] }),
    backward: (dy) => [tf.reshape(tf.mul(dy, normFactor(layer)), dy.shape)],
  };
}

/**
 * A batch norm, the residual Add after it (if any) and the ReLU (./batch-norm-block.ts) as one
 * node whose inputs are the batch norm's input and the Add's other one: forward by our op on the
 * one copy, backward by its gradient op over every copy with the one copy's steps (one pass
 * where the three steps take three; the same values but for a NaN, which the op's step, as
 * TensorFlow's ReluGrad, counts as 0).
 */
function normBlockStep(norm: tf.layers.Layer, withSide: boolean): Step {
  return {
    forward([x, side]) {
      const y = applyBatchNormBlock(norm, x, side);
      if (!y) throw new Error('internal: the batch-norm op went away between calls');
      return { y, save: [y] };
    },
    backward(dy, [y], count) {
      const factor = normFactor(norm);
      const fused = reluScaleGradient(dy, y, factor, withSide);
      if (fused) return withSide ? [fused.dx, fused.g] : [fused.dx];
      const g = maskCopies(dy, tf.step(y), count);
      const dx = tf.reshape(tf.mul(g, factor), dy.shape);
      return withSide ? [dx, g] : [dx];
    },
  };
}

/**
 * The prefix's nodes with each batch-norm block that our op takes as one node (see
 * {@link normBlockStep}), and those nodes' steps. A block whose batch norm or Add output is a
 * frontier tensor stays as it is.
 */
function fuseNormBlocks(
  nodes: PrefixNode[],
  frontier: number[],
): { nodes: PrefixNode[]; steps: Map<PrefixNode, Step> } {
  const steps = new Map<PrefixNode, Step>();
  const replaced = new Map<PrefixNode, PrefixNode | null>();
  for (const [norm, block] of batchNormBlocks(nodes, -1)) {
    const inner = block.add ? [norm, block.add] : [norm];
    // (An Add of two batch norms, a downsampling shortcut's, takes the first; the other is a side.)
    const taken = replaced.has(block.relu);
    if (
      taken ||
      inner.some((n) => frontier.includes(n.outputs[0].id)) ||
      !batchNormBlockFits(norm)
    ) {
      continue;
    }
    const side = block.add?.inputs.find((t) => t.id !== norm.outputs[0].id);
    const node: PrefixNode = {
      layer: block.relu.layer,
      inputs: side ? [norm.inputs[0], side] : [norm.inputs[0]],
      outputs: block.relu.outputs,
    };
    inner.forEach((n) => replaced.set(n, null));
    replaced.set(block.relu, node);
    steps.set(node, normBlockStep(norm.layer, side !== undefined));
  }
  const kept = nodes.flatMap((n) => {
    const r = replaced.get(n);
    return r === undefined ? [n] : r === null ? [] : [r];
  });
  return { nodes: kept, steps };
}

/** Zero padding: the gradient is the unpadded window of dy. */
function paddingStep(layer: tf.layers.Layer, apply: Apply): Step | undefined {
  const config = layer.getConfig();
  if (config.dataFormat !== 'channelsLast') return undefined;
  const [[top], [left]] = config.padding as Padding;
  return {
    forward: ([x]) => ({ y: apply([x]), save: [x] }),
    backward: (dy, [x], count) => [
      tf.slice(dy, [0, top, left, 0], [count * x.shape[0], ...x.shape.slice(1)]),
    ],
  };
}

/**
 * ZeroPadding2D layers whose one reader is a `valid` Conv2D (./padded-conv.ts): that
 * convolution's input gradient goes to the unpadded input ({@link paddedConvInputGrad}: straight
 * into it where the backend's kernel takes explicit padding, ResNet-18's stem 11.6 against
 * 15.6 µs per example; else into the padded input and its window, as the two steps would), and
 * the padding's backward passes the gradient through. Maps each such convolution to its padding;
 * `paddings` holds the folded padding nodes.
 */
function paddingFolds(
  nodes: PrefixNode[],
  frontier: number[],
): { convs: Map<PrefixNode, Padding>; paddings: Set<PrefixNode> } {
  const convs = new Map<PrefixNode, Padding>();
  const paddings = new Set<PrefixNode>();
  for (const [conv, pad] of paddedConvPairs(nodes, -1)) {
    if (frontier.includes(pad.outputs[0].id)) continue;
    convs.set(conv, paddingOf(pad.layer));
    paddings.add(pad);
  }
  return { convs, paddings };
}

type Folds = ReturnType<typeof paddingFolds>;

/**
 * A Conv2D and the max pooling that alone reads it as our ops (./conv-pool-block.ts): forward
 * on the one copy with each pooled value's route, backward on every copy in one op. The same
 * values as the two layers' steps. The pooling node's own step then passes values through.
 */
function convPoolStep(
  conv: tf.layers.Layer,
  pool: tf.layers.Layer,
  input: number[],
): Step | undefined {
  const shape = convPoolStepShape(conv, pool, input);
  if (!shape) return undefined;
  return {
    forward([x]) {
      const { filters, biases } = ownWeights(conv);
      const out = convPoolRoute({ ...shape, x, filters, biases });
      if (!out) throw new Error('internal: the conv-pool op went away between calls');
      return { y: out.y, save: [out.route, filters] };
    },
    backward: (dy, [route, filters]) => [
      convPoolGrad({ ...shape, dy, route, filters, inputSize: [input[1], input[2]] }),
    ],
  };
}

const passThrough: Step = { forward: ([x]) => ({ y: x, save: [] }), backward: (dy) => [dy] };

/** The prefix's conv-pool pairs that the ops take (none with a folded padding). */
function blockPairs(nodes: PrefixNode[], folds: Folds): Map<PrefixNode, Step> {
  const steps = new Map<PrefixNode, Step>();
  for (const [conv, pool] of convPoolPairs(nodes, -1)) {
    if (folds.convs.has(conv)) continue;
    const input = [1, ...((conv.inputs[0] as tf.SymbolicTensor).shape.slice(1) as number[])];
    const step = convPoolStep(conv.layer, pool.layer, input);
    if (!step) continue;
    steps.set(conv, step);
    steps.set(pool, passThrough);
  }
  return steps;
}

/** The node's step, or undefined for a layer this module does not handle. */
function stepOf(node: PrefixNode, applyNode: ApplyNode, folds: Folds): Step | undefined {
  const apply: Apply = (args) => applyNode(node, args);
  const layer = node.layer;
  if (folds.paddings.has(node)) {
    return { forward: ([x]) => ({ y: apply([x]), save: [] }), backward: (dy) => [dy] };
  }
  switch (layer.getClassName()) {
    case 'Dropout':
      return { forward: ([x]) => ({ y: x, save: [] }), backward: (dy) => [dy] };
    case 'Flatten':
      return {
        forward: ([x]) => ({ y: apply([x]), save: [x] }),
        backward: (dy, [x], count) => [tf.reshape(dy, [count * x.shape[0], ...x.shape.slice(1)])],
      };
    case 'Conv2D':
    case 'Dense':
      return productStep(layer, apply, folds.convs.get(node));
    case 'ReLU':
    case 'Activation':
      return reluStep(layer, apply);
    case 'MaxPooling2D':
      return poolStep(layer, apply);
    case 'BatchNormalization':
      return batchNormStep(layer, apply);
    case 'ZeroPadding2D':
      return paddingStep(layer, apply);
    case 'Add':
      // Same shapes: tfjs' gradient hands dy to every input unchanged.
      if (!sameInputShapes(node)) return undefined;
      return {
        forward: (args) => ({ y: apply(args), save: [] }),
        backward: (dy) => node.inputs.map(() => dy),
      };
    default:
      return undefined;
  }
}

/**
 * The prefix `nodes` (graph order, each with one output) from the model input `inputId` to the
 * `frontier` tensors, as one differentiable function of `count` copies of a batch (stacked along
 * the batch) that returns the frontier tensors' `count` copies, each flattened per example and
 * concatenated in frontier order (`[count·n, Σ sizes]`): the forward pass runs on the first copy.
 */
export function sharedPrefix(
  graphNodes: PrefixNode[],
  inputId: number,
  frontier: number[],
  applyNode: ApplyNode,
): ((xs: tf.Tensor, count: number) => tf.Tensor) | undefined {
  if (graphNodes.length === 0 || graphNodes.some((n) => n.outputs.length !== 1)) return undefined;
  const norms = fuseNormBlocks(graphNodes, frontier);
  const nodes = norms.nodes;
  const folds = paddingFolds(nodes, frontier);
  const blocks = blockPairs(nodes, folds);
  const found = nodes.map(
    (n) => norms.steps.get(n) ?? blocks.get(n) ?? stepOf(n, applyNode, folds),
  );
  if (found.some((step) => !step)) return undefined;
  const steps = found as Step[];
  return (xs, count) => {
    const n = xs.shape[0] / count;
    const op = tf.customGrad(
      (input: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
        const values = new Map<number, tf.Tensor>([[inputId, tf.slice(input as tf.Tensor, 0, n)]]);
        const saved: tf.Tensor[] = [];
        const spans: number[] = [];
        nodes.forEach((node, i) => {
          const out = steps[i].forward(node.inputs.map((t) => values.get(t.id) as tf.Tensor));
          values.set(node.outputs[0].id, out.y);
          saved.push(...out.save);
          spans.push(out.save.length);
        });
        (save as tf.GradSaveFunc)(saved);
        const outs = frontier.map((id) => values.get(id) as tf.Tensor);
        const shapes = outs.map((t) => t.shape.slice(1));
        const sizes = outs.map((t) => perExample(t.shape));
        const packed = tf.concat(
          outs.map((t) => tf.reshape(t, [n, -1])),
          1,
        );
        return {
          value: copies(packed, count),
          gradFunc: (dy: tf.Tensor, kept: tf.Tensor[]) =>
            backward(nodes, steps, spans, kept, inputId, frontier, shapes, sizes, dy, count),
        };
      },
    );
    return op(xs);
  };
}

/** The prefix's backward pass on `count` copies: each node's step, gradients summed per tensor. */
function backward(
  nodes: PrefixNode[],
  steps: Step[],
  spans: number[],
  kept: tf.Tensor[],
  inputId: number,
  frontier: number[],
  shapes: number[][],
  sizes: number[],
  dy: tf.Tensor,
  count: number,
): tf.Tensor {
  const grads = new Map<number, tf.Tensor>();
  const parts = sizes.length === 1 ? [dy] : tf.split(dy, sizes, 1);
  frontier.forEach((id, i) => grads.set(id, tf.reshape(parts[i], [dy.shape[0], ...shapes[i]])));
  let end = kept.length;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const start = end - spans[i];
    const g = grads.get(nodes[i].outputs[0].id);
    if (g) {
      const dxs = steps[i].backward(g, kept.slice(start, end), count);
      nodes[i].inputs.forEach((t, k) => {
        const previous = grads.get(t.id);
        grads.set(t.id, previous ? tf.add(previous, dxs[k]) : dxs[k]);
      });
    }
    end = start;
  }
  return grads.get(inputId) ?? tf.zerosLike(dy);
}
