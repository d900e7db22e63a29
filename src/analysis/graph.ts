import * as tf from '@tensorflow/tfjs';
import {
  applyBatchNormBlock,
  applyNormPool,
  batchNormBlockFits,
  batchNormBlocks,
  normPoolChains,
  type BatchNormBlock,
  type NormPoolChain,
} from './batch-norm-block';
import { convPoolPairs, convThenPool, ownWeights, type BlockWeights } from './conv-pool-block';
import { copies, perExample } from './blocks';
import {
  paddedConv,
  paddedConvPairs,
  paddingFoldable,
  paddingOf,
  pads4,
  type Padding,
} from './padded-conv';
import { sharedPrefix, type PrefixNode } from './shared-prefix';

/** One call of a layer in a model's graph. */
interface GraphNode {
  layer: tf.layers.Layer;
  inputs: tf.SymbolicTensor[];
  outputs: tf.SymbolicTensor[];
  callArgs: Record<string, unknown>;
}

/** The part of a graph that an ablated layer affects, and what feeds it. */
export interface GraphSplit {
  /** Tensors computed outside the affected part and consumed by it (cacheable). */
  frontier: tf.SymbolicTensor[];
  /** The nodes that compute the frontier from the model inputs. */
  prefix: GraphNode[];
  /** The nodes downstream of (and including) the ablated layer. */
  suffix: GraphNode[];
}

interface ActivationLike {
  apply(x: tf.Tensor): tf.Tensor;
  getClassName(): string;
}

/** Private fields of tfjs-layers' Conv2D, DepthwiseConv2D and Dense that the unfused path reads. */
export interface KernelLayer {
  kernel?: tf.LayerVariable;
  depthwiseKernel?: tf.LayerVariable;
  bias?: tf.LayerVariable | null;
  activation?: ActivationLike | null;
}

/** Reads a weight's value; the batched sweep substitutes one filtered variant's. */
type WeightReader = (v: tf.LayerVariable) => tf.Tensor;

const readWeight: WeightReader = (v) => v.read();

/** Layer classes that {@link applyUnfused} computes, with the input rank each needs. */
const UNFUSED_RANK: Record<string, number> = { Conv2D: 4, DepthwiseConv2D: 4, Dense: 2 };

function isSoftmaxLayer(layer: tf.layers.Layer): boolean {
  const cls = layer.getClassName();
  return cls === 'Softmax' || (cls === 'Activation' && layer.getConfig().activation === 'softmax');
}

/** Activations that tfjs' fused ops apply after the bias (the rest run as their own op). */
const FUSABLE = new Set(['linear', 'relu', 'relu6', 'elu', 'sigmoid']);

function convGeometry(layer: tf.layers.Layer): {
  strides: [number, number];
  padding: 'same' | 'valid';
  rate: number | [number, number];
} {
  const config = layer.getConfig();
  const dilation = config.dilationRate as number | [number, number];
  const rate: number | [number, number] = Array.isArray(dilation)
    ? [dilation[0], dilation[1]]
    : dilation;
  return {
    strides: config.strides as [number, number],
    padding: config.padding as 'same' | 'valid',
    rate,
  };
}

function convolve(
  layer: tf.layers.Layer,
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  depthwise: boolean,
  folded?: Padding,
  forwardOnly = false,
): tf.Tensor {
  const { strides, padding, rate } = convGeometry(layer);
  // The padding before a `valid` Conv2D, taken as explicit amounts (./padded-conv.ts).
  if (folded) return paddedConv(x, kernel, strides, folded, !forwardOnly);
  return depthwise
    ? tf.depthwiseConv2d(x, kernel, strides, padding, 'NHWC', rate)
    : tf.conv2d(x, kernel, strides, padding, 'NHWC', rate);
}

/**
 * A Conv2D or Dense layer with a bias as one fused op (product, bias, activation): fewer passes
 * over the output, same values. Only for passes that are not differentiated: tfjs' fused ops'
 * gradient computes the kernel's gradient too. Undefined where it does not apply.
 */
function applyFused(
  layer: tf.layers.Layer,
  x: tf.Tensor,
  withActivation: boolean,
  read: WeightReader,
  folded?: Padding,
): tf.Tensor | undefined {
  const cls = layer.getClassName();
  const own = layer as unknown as KernelLayer;
  if (!own.kernel || !own.bias || (cls !== 'Conv2D' && cls !== 'Dense')) return undefined;
  const name = withActivation && own.activation ? own.activation.getClassName() : 'linear';
  const activation = FUSABLE.has(name) ? (name as tf.fused.Activation) : 'linear';
  let y: tf.Tensor;
  if (cls === 'Dense') {
    y = tf.fused.matMul({
      a: x as tf.Tensor2D,
      b: read(own.kernel) as tf.Tensor2D,
      bias: read(own.bias),
      activation,
    });
  } else {
    if (layer.getConfig().dataFormat !== 'channelsLast') return undefined;
    const { strides, padding, rate } = convGeometry(layer);
    y = tf.fused.conv2d({
      x: x as tf.Tensor4D,
      filter: read(own.kernel) as tf.Tensor4D,
      strides,
      pad: folded ? pads4(folded) : padding,
      dilations: rate,
      bias: read(own.bias),
      activation,
    });
  }
  if (activation === 'linear' && name !== 'linear' && withActivation && own.activation) {
    y = own.activation.apply(y);
  }
  return y;
}

/**
 * Conv2D, DepthwiseConv2D and Dense through plain (unfused) ops. tfjs-layers runs them as fused
 * ops whose gradient computes the kernel's gradient too, even when only the input's is asked for;
 * the plain ops' gradients are computed only where needed, so an attack's input gradient skips
 * the filter-gradient work. `read` gives the weights' values (a filtered variant's in the batched
 * sweep). Returns undefined for layers (or configurations) it does not handle.
 */
function applyUnfused(
  layer: tf.layers.Layer,
  x: tf.Tensor,
  withActivation: boolean,
  read: WeightReader = readWeight,
  forwardOnly = false,
  folded?: Padding,
): tf.Tensor | undefined {
  const cls = layer.getClassName();
  if (forwardOnly && x.rank === UNFUSED_RANK[cls]) {
    const fused = applyFused(layer, x, withActivation, read, folded);
    if (fused) return fused;
  }
  const own = layer as unknown as KernelLayer;
  const kernel = cls === 'DepthwiseConv2D' ? own.depthwiseKernel : own.kernel;
  if (!kernel || UNFUSED_RANK[cls] === undefined || x.rank !== UNFUSED_RANK[cls]) return undefined;
  let y: tf.Tensor;
  if (cls === 'Dense') {
    y = tf.matMul(x as tf.Tensor2D, read(kernel) as tf.Tensor2D);
  } else {
    if (layer.getConfig().dataFormat !== 'channelsLast') return undefined;
    const depthwise = cls === 'DepthwiseConv2D';
    y = convolve(
      layer,
      x as tf.Tensor4D,
      read(kernel) as tf.Tensor4D,
      depthwise,
      folded,
      forwardOnly,
    );
  }
  if (own.bias) y = tf.add(y, read(own.bias));
  if (withActivation && own.activation) y = own.activation.apply(y);
  return y;
}

/**
 * Filtered variants of some weights, evaluated together (the batched sweep): `values` holds,
 * for each varied weight, `count` tensors of its shape. A batch run with variants holds `count`
 * blocks of examples, block b computed with every varied weight at its value b.
 */
export interface WeightVariants {
  values: Map<tf.LayerVariable, tf.Tensor[]>;
  count: number;
}

/** Whether the batched sweep can vary `variable` of `layer` (else it is evaluated one by one). */
export function canVary(layer: tf.layers.Layer, variable: tf.LayerVariable): boolean {
  const cls = layer.getClassName();
  const own = layer as unknown as KernelLayer;
  const rank = UNFUSED_RANK[cls];
  if (rank === undefined) return false;
  if (cls !== 'Dense' && layer.getConfig().dataFormat !== 'channelsLast') return false;
  const weights = [own.kernel, own.depthwiseKernel, own.bias].filter((w) => w);
  if (!weights.includes(variable)) return false;
  const calls = layer.inboundNodes as unknown as NodeLike[];
  return calls.every((n) => n.inputTensors.length === 1 && n.inputTensors[0].rank === rank);
}

/** Layers that act on each channel alone: they run unchanged on the stacked layout. */
function isChannelwise(layer: tf.layers.Layer): boolean {
  const cls = layer.getClassName();
  if (cls === 'MaxPooling2D' || cls === 'AveragePooling2D') {
    return layer.getConfig().dataFormat === 'channelsLast';
  }
  if (cls === 'Activation') return FUSABLE.has(layer.getConfig().activation as string);
  return cls === 'ReLU' || cls === 'Dropout';
}

/** The variants' values of `v`: its own value repeated where the variants leave it alone. */
function variantValues(variants: WeightVariants, v: tf.LayerVariable): tf.Tensor[] {
  return variants.values.get(v) ?? Array.from({ length: variants.count }, () => v.read());
}

/** The variants' values of `v` side by side along its last axis (stacked output channels). */
function concatVariants(variants: WeightVariants, v: tf.LayerVariable): tf.Tensor {
  const values = variantValues(variants, v);
  return tf.concat(values, values[0].rank - 1);
}

/**
 * The stacked layout of `count` variants of a layer's output, `[M, ..., count·channels]` with
 * variant b in channels `[b·channels, (b+1)·channels)`, as the block layout `[count·M, ...,
 * channels]` (block b = variant b).
 */
function unstack(y: tf.Tensor, count: number, channels: number): tf.Tensor {
  const [m, ...rest] = y.shape;
  const inner = rest.slice(0, -1);
  const split = tf.reshape(y, [m, ...inner, count, channels]);
  const axis = inner.length + 1;
  const perm = [axis, ...Array.from({ length: axis }, (_, i) => i), axis + 1];
  return tf.reshape(tf.transpose(split, perm), [count * m, ...inner, channels]);
}

/**
 * All variants of a Conv2D or Dense layer on one shared input as one fused op: the variants'
 * kernels (and biases) concatenated along the output channels, so the product runs once with
 * `count·channels` outputs instead of `count` times, and the layers after it that act per
 * channel (pooling, ReLU) run on that stacked layout before it is rearranged into blocks
 * (4× smaller after a 2×2 pooling). Undefined where it does not apply (an activation that mixes
 * channels such as softmax, another layer class).
 */
function applyStacked(
  layer: tf.layers.Layer,
  x: tf.Tensor,
  variants: WeightVariants,
): { y: tf.Tensor; channels: number } | undefined {
  const own = layer as unknown as KernelLayer;
  const activation = own.activation?.getClassName() ?? 'linear';
  const cls = layer.getClassName();
  if (!own.kernel || !FUSABLE.has(activation)) return undefined;
  if ((cls !== 'Conv2D' && cls !== 'Dense') || x.rank !== UNFUSED_RANK[cls]) return undefined;
  const stackOf = (v: tf.LayerVariable) => concatVariants(variants, v);
  const kernel = own.kernel;
  const bias = own.bias;
  const read = (v: tf.LayerVariable) => (v === kernel || v === bias ? stackOf(v) : v.read());
  // Without a bias, the plain product (as each variant's own pass runs it) on the stacked kernel.
  const y = bias ? applyFused(layer, x, true, read) : applyUnfused(layer, x, true, read);
  if (!y) return undefined;
  return { y, channels: kernel.shape[kernel.shape.length - 1] as number };
}

interface RunOptions {
  /** Take the logits behind a final softmax. */
  stripSoftmax?: boolean;
  variants?: WeightVariants;
  /** Fed tensors holding one block (not `count`): tiled for every layer but a varied one. */
  shared?: Set<number>;
  /** The pass is not differentiated: Conv2D and Dense may run as fused ops. */
  forwardOnly?: boolean;
}

/** How {@link GraphRunner} runs copies of one batch: the prefix once, then the suffix. */
interface SharedPlan {
  /** Copies of a batch → the frontier tensors' copies, flattened and concatenated. */
  prefix: (xs: tf.Tensor, count: number) => tf.Tensor;
  frontier: tf.SymbolicTensor[];
  /** Values per example of each frontier tensor. */
  sizes: number[];
  suffix: GraphNode[];
}

interface NodeLike {
  inputTensors: tf.SymbolicTensor[];
  outputTensors: tf.SymbolicTensor[];
  callArgs?: Record<string, unknown>;
}

/**
 * Runs a LayersModel's graph node by node, in inference mode, so that the activations entering
 * an ablated layer can be computed once and only the layers downstream of it re-run at each
 * filtering step. Relies on tfjs-layers' symbolic graph (`SymbolicTensor.sourceLayer`,
 * `nodeIndex`, `Layer.inboundNodes`), as `model.predict` itself does.
 */
export class GraphRunner {
  readonly nodes: GraphNode[];
  private readonly plans = new Map<tf.layers.Layer, SharedPlan | undefined>();
  private readonly inputIds: number[];
  private readonly outputId: number;
  /** Conv2D nodes whose output only a max pooling reads: one op in forward passes. */
  private readonly pooledBy: Map<GraphNode, GraphNode>;
  /** Batch norms computed with the ReLU after them (and an Add between): one op. */
  private readonly normBlocks: Map<GraphNode, BatchNormBlock<GraphNode>>;
  /** Batch norms whose ReLU, padding and max pooling forward passes compute with them: one op. */
  private readonly normPools: Map<GraphNode, NormPoolChain<GraphNode>>;
  /** Conv2D nodes whose padding they take as explicit amounts (./padded-conv.ts), and back. */
  private readonly paddedBy: Map<GraphNode, GraphNode>;
  private readonly padsInto: Map<GraphNode, GraphNode>;

  constructor(private readonly model: tf.LayersModel) {
    if (model.outputs.length !== 1) {
      throw new Error(`the analysis needs a model with one output; got ${model.outputs.length}`);
    }
    this.inputIds = model.inputs.map((t) => t.id);
    this.outputId = model.outputs[0].id;
    this.nodes = [];
    const visited = new Set<string>();
    const inputs = new Set(this.inputIds);
    const visit = (t: tf.SymbolicTensor): void => {
      if (inputs.has(t.id)) return;
      const layer = t.sourceLayer as tf.layers.Layer;
      const key = `${layer.name}#${t.nodeIndex}`;
      if (visited.has(key)) return;
      visited.add(key);
      const node = layer.inboundNodes[t.nodeIndex] as unknown as NodeLike;
      node.inputTensors.forEach(visit);
      this.nodes.push({
        layer,
        inputs: node.inputTensors,
        outputs: node.outputTensors,
        callArgs: node.callArgs ?? {},
      });
    };
    visit(model.outputs[0]);
    this.pooledBy = convPoolPairs(this.nodes, this.outputId);
    this.normBlocks = batchNormBlocks(this.nodes, this.outputId);
    this.normPools = normPoolChains(this.nodes, this.normBlocks, this.outputId);
    this.paddedBy = paddedConvPairs(this.nodes, this.outputId);
    this.padsInto = new Map([...this.paddedBy].map(([conv, pad]) => [pad, conv]));
  }

  /** Splits the graph at every call of `layer`. */
  split(layer: tf.layers.Layer): GraphSplit {
    const affected = new Set<number>();
    const suffix: GraphNode[] = [];
    for (const node of this.nodes) {
      if (node.layer === layer || node.inputs.some((t) => affected.has(t.id))) {
        node.outputs.forEach((t) => affected.add(t.id));
        suffix.push(node);
      }
    }
    if (suffix.length === 0) {
      throw new Error(`layer '${layer.name}' is not part of model '${this.model.name}'`);
    }
    const frontierById = new Map<number, tf.SymbolicTensor>();
    for (const node of suffix) {
      for (const t of node.inputs) if (!affected.has(t.id)) frontierById.set(t.id, t);
    }
    const frontier = [...frontierById.values()];
    // The prefix: the unaffected nodes that the frontier depends on.
    const needed = new Set(frontier.map((t) => t.id));
    const prefix: GraphNode[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      if (suffix.includes(node)) continue;
      if (node.outputs.some((t) => needed.has(t.id))) {
        prefix.unshift(node);
        node.inputs.forEach((t) => needed.add(t.id));
      }
    }
    return { frontier, prefix, suffix };
  }

  /**
   * Computes the frontier tensors of `split` for a batch of inputs. Returns them in the order
   * of `split.frontier`; the caller disposes them.
   */
  frontier(split: GraphSplit, xs: tf.Tensor): tf.Tensor[] {
    return tf.tidy(() => {
      const values = this.run(split.prefix, this.feedInputs(xs));
      return split.frontier.map((t) => {
        const v = values.get(t.id);
        if (!v) throw new Error(`internal: frontier tensor ${t.name} was not computed`);
        return v;
      });
    });
  }

  /**
   * Runs the suffix of `split` from cached frontier tensors and returns the model output. With
   * `variants`, the frontier holds one block of examples and the output `variants.count` blocks:
   * the varied layer runs once per variant on the block, every other layer once on all blocks.
   */
  suffixOutput(split: GraphSplit, frontier: tf.Tensor[], variants?: WeightVariants): tf.Tensor {
    return tf.tidy(() => {
      const feed = new Map<number, tf.Tensor>();
      split.frontier.forEach((t, i) => feed.set(t.id, frontier[i]));
      const shared = variants ? new Set(feed.keys()) : undefined;
      return this.output(this.run(split.suffix, feed, { variants, shared, forwardOnly: true }));
    });
  }

  /**
   * Runs the whole graph (equivalent to `model.predict` on one batch). With `variants`, `xs`
   * holds `variants.count` blocks of examples, block b run with the weights' values b.
   */
  predict(xs: tf.Tensor, variants?: WeightVariants): tf.Tensor {
    return tf.tidy(() =>
      this.output(this.run(this.nodes, this.feedInputs(xs), { variants, forwardOnly: true })),
    );
  }

  /**
   * The model output through the same ops as {@link logits}, softmax kept. Differentiable.
   * With `copies`, `xs` holds `variants.count` identical copies of one batch (see
   * {@link logits}).
   */
  raw(xs: tf.Tensor, variants?: WeightVariants, copies = false): tf.Tensor {
    return this.throughGraph(xs, { variants }, copies);
  }

  /**
   * Whether the model's output comes from a softmax that {@link logits} can look behind: a
   * softmax activation layer, or a Conv2D/Dense layer with `activation: 'softmax'`.
   */
  endsInSoftmax(): boolean {
    const last = this.nodes[this.nodes.length - 1].layer;
    if (isSoftmaxLayer(last)) return true;
    return last.getConfig().activation === 'softmax';
  }

  /**
   * The pre-softmax output (see {@link endsInSoftmax}); the plain output when the model does not
   * end in a softmax. Differentiable (no tidy: callers run it under `tf.grad`). `variants` as in
   * {@link predict}.
   */
  logits(xs: tf.Tensor, variants?: WeightVariants, copies = false): tf.Tensor {
    return this.throughGraph(xs, { stripSoftmax: true, variants }, copies);
  }

  /**
   * The whole graph on `xs`; with `copies` (`xs` = `variants.count` copies of one batch, as when
   * the batched sweep attacks many filtered models of one clean batch) the layers upstream of
   * the varied one run once (see ./shared-prefix.ts), where their chain allows it.
   */
  private throughGraph(xs: tf.Tensor, options: RunOptions, copies: boolean): tf.Tensor {
    const plan = copies && options.variants ? this.sharedPlan(options.variants) : undefined;
    if (!plan || !options.variants) {
      return this.output(this.run(this.nodes, this.feedInputs(xs), options));
    }
    const packed = plan.prefix(xs, options.variants.count);
    // (tfjs' gradient of a one-part split is broken: no split for one frontier tensor.)
    const parts = plan.sizes.length === 1 ? [packed] : tf.split(packed, plan.sizes, 1);
    const feed = new Map<number, tf.Tensor>();
    plan.frontier.forEach((t, i) => {
      feed.set(t.id, tf.reshape(parts[i], [packed.shape[0], ...(t.shape.slice(1) as number[])]));
    });
    return this.output(this.run(plan.suffix, feed, options));
  }

  /** The shared-prefix plan for the layer that `variants` vary, cached; undefined where none applies. */
  private sharedPlan(variants: WeightVariants): SharedPlan | undefined {
    const layers = new Set(
      this.nodes.filter((n) => this.varies(n.layer, variants)).map((n) => n.layer),
    );
    if (layers.size !== 1) return undefined;
    const [layer] = [...layers];
    if (!this.plans.has(layer)) this.plans.set(layer, this.planFor(layer));
    return this.plans.get(layer);
  }

  private planFor(layer: tf.layers.Layer): SharedPlan | undefined {
    const split = this.split(layer);
    if (this.inputIds.length !== 1 || split.prefix.length === 0) return undefined;
    if (split.frontier.some((t) => this.inputIds.includes(t.id))) return undefined;
    const apply = (node: PrefixNode, args: tf.Tensor[]) =>
      this.applyNode(node as GraphNode, args, true) as tf.Tensor;
    const prefix = sharedPrefix(
      split.prefix,
      this.inputIds[0],
      split.frontier.map((t) => t.id),
      apply,
    );
    const sizes = split.frontier.map((t) => perExample(t.shape));
    return prefix && { prefix, frontier: split.frontier, sizes, suffix: split.suffix };
  }

  /**
   * Bytes of the activations one example makes through `nodes` (every node by default): the
   * float32 outputs of each layer, a measure of a pass's working memory. A Conv2D, Depthwise or
   * Dense layer counts its output once more for a bias and once more for an activation: the
   * unfused ops that attacks run keep each of those tensors.
   */
  exampleBytes(nodes: GraphNode[] = this.nodes): number {
    let floats = 0;
    for (const node of nodes) {
      const own = node.layer as unknown as KernelLayer;
      const kernel = UNFUSED_RANK[node.layer.getClassName()] !== undefined;
      const linear = (own.activation?.getClassName() ?? 'linear') === 'linear';
      const kept = kernel ? 1 + (own.bias ? 1 : 0) + (linear ? 0 : 1) : 1;
      for (const t of node.outputs) {
        floats += kept * perExample(t.shape);
      }
    }
    return 4 * floats;
  }

  private output(values: Map<number, tf.Tensor>): tf.Tensor {
    const out = values.get(this.outputId);
    if (!out) throw new Error('internal: the model output was not computed');
    return out;
  }

  private feedInputs(xs: tf.Tensor): Map<number, tf.Tensor> {
    if (this.inputIds.length !== 1) {
      throw new Error(`the analysis needs a model with one input; got ${this.inputIds.length}`);
    }
    return new Map([[this.inputIds[0], xs]]);
  }

  private run(
    nodes: GraphNode[],
    feed: Map<number, tf.Tensor>,
    options: RunOptions = {},
  ): Map<number, tf.Tensor> {
    const values = new Map(feed);
    const last = this.nodes[this.nodes.length - 1];
    const tiled = new Map<number, tf.Tensor>();
    // Outputs in the stacked layout (see applyStacked): id → channels per variant.
    const stacked = new Map<number, number>();
    // Batch norms left for their ReLU to compute in one op (see fuseNorm): output id → node.
    const pending = new Map<number, GraphNode>();
    const count = options.variants?.count ?? 1;
    // Paddings left for their convolution to take (see foldsPadding): output id → node.
    const unpadded = new Map<number, GraphNode>();
    const plain = (id: number): tf.Tensor | undefined => {
      const pad = unpadded.get(id);
      if (pad) {
        unpadded.delete(id);
        values.set(id, this.applyNode(pad, argsOf(pad, false), true) as tf.Tensor);
      }
      const norm = pending.get(id);
      if (norm) {
        pending.delete(id);
        values.set(
          id,
          this.applyNode(norm, argsOf(norm, false), true, options.forwardOnly) as tf.Tensor,
        );
      }
      const v = values.get(id);
      const channels = stacked.get(id);
      if (!v || channels === undefined) return v;
      const u = unstack(v, count, channels);
      values.set(id, u);
      stacked.delete(id);
      return u;
    };
    const argOf = (node: GraphNode, at: number, varied?: boolean): tf.Tensor => {
      const t = node.inputs[at];
      const v = plain(t.id);
      if (!v) throw new Error(`internal: input ${t.name} of layer ${node.layer.name} is missing`);
      return varied ? v : this.blocksOf(t.id, v, options, tiled);
    };
    const argsOf = (node: GraphNode, varied: boolean | undefined): tf.Tensor[] =>
      node.inputs.map((_, at) => argOf(node, at, varied));
    const inRun = new Set(nodes);
    const done = new Set<GraphNode>();
    for (const node of nodes) {
      if (done.has(node)) continue;
      const varied = options.variants && this.varies(node.layer, options.variants);
      const chain = this.pooledNorm(node, inRun, options);
      const stem = chain && applyNormPool(node.layer, chain, argOf(node, 0));
      if (chain && stem) {
        values.set(chain.pool.outputs[0].id, stem);
        [chain.relu, chain.pad, chain.pool].forEach((n) => done.add(n));
        continue;
      }
      const block = this.normBlocks.get(node);
      if (block && !varied && inRun.has(block.relu) && batchNormBlockFits(node)) {
        pending.set(node.outputs[0].id, node);
        continue;
      }
      const fused = this.fuseNorm(node, pending, argOf);
      if (fused) {
        values.set(fused.relu.outputs[0].id, fused.y);
        done.add(fused.relu);
        continue;
      }
      const input = node.inputs.length === 1 ? node.inputs[0].id : undefined;
      if (input !== undefined && stacked.has(input) && isChannelwise(node.layer)) {
        // Pooling and element-wise layers run on the stacked layout as they are.
        const y = this.applyNode(node, [values.get(input) as tf.Tensor], true, true) as tf.Tensor;
        values.set(node.outputs[0].id, y);
        stacked.set(node.outputs[0].id, stacked.get(input) as number);
        continue;
      }
      const strip = options.stripSoftmax === true && node === last;
      const withActivation = !(strip && node.layer.getConfig().activation === 'softmax');
      if (this.foldsPadding(node, inRun, options)) {
        unpadded.set(node.outputs[0].id, node);
        continue;
      }
      const pad = this.paddedBy.get(node);
      if (pad && unpadded.delete(pad.outputs[0].id)) {
        const x = argOf(pad, 0);
        const folded = paddingOf(pad.layer);
        const y = this.applyNode(node, [x], withActivation, options.forwardOnly, folded);
        values.set(node.outputs[0].id, y as tf.Tensor);
        continue;
      }
      const args = argsOf(node, varied);
      if (strip && isSoftmaxLayer(node.layer)) {
        values.set(node.outputs[0].id, args[0]);
        continue;
      }
      const partner = this.pooledBy.get(node);
      // (A pooling node always runs with its convolution: it is affected exactly when that is.)
      const pool = partner && nodes.includes(partner) ? partner : undefined;
      const pooled = pool && this.block(node, pool, args[0], varied === true, options);
      if (pool && pooled) {
        values.set(pool.outputs[0].id, pooled);
        done.add(pool);
        continue;
      }
      const stack =
        varied &&
        options.forwardOnly &&
        count > 1 &&
        input !== undefined &&
        options.shared?.has(input)
          ? applyStacked(node.layer, args[0], options.variants as WeightVariants)
          : undefined;
      if (stack) {
        values.set(node.outputs[0].id, stack.y);
        stacked.set(node.outputs[0].id, stack.channels);
        continue;
      }
      const result = varied
        ? this.applyVariants(node, args[0], withActivation, options)
        : this.applyNode(node, args, withActivation, options.forwardOnly);
      const outs = Array.isArray(result) ? result : [result];
      node.outputs.forEach((t, i) => values.set(t.id, outs[i]));
    }
    plain(this.outputId);
    return values;
  }

  /** The ReLU, padding and pooling that a forward pass computes with batch norm `node`, if any. */
  private pooledNorm(
    node: GraphNode,
    inRun: Set<GraphNode>,
    options: RunOptions,
  ): NormPoolChain<GraphNode> | undefined {
    const chain = this.normPools.get(node);
    if (!chain || !options.forwardOnly || !inRun.has(chain.pool)) return undefined;
    if (options.variants && this.varies(node.layer, options.variants)) return undefined;
    return batchNormBlockFits(node) ? chain : undefined;
  }

  /**
   * Whether `node` is a padding that its convolution takes as explicit amounts in this run: the
   * convolution runs in it with the model's own weights (a varied one runs per variant) and
   * without its pooling op.
   */
  private foldsPadding(node: GraphNode, inRun: Set<GraphNode>, options: RunOptions): boolean {
    const conv = this.padsInto.get(node);
    if (!conv || !inRun.has(conv) || this.pooledBy.has(conv) || !paddingFoldable()) return false;
    return !(options.variants && this.varies(conv.layer, options.variants));
  }

  /**
   * At the ReLU of a pending batch norm (or the Add before it): the batch norm, the Add and the
   * ReLU as one op (./batch-norm-block.ts), the Add's other input as the side. Undefined for any
   * other node (or where the op does not run: the batch norm is then computed as its own layer).
   */
  private fuseNorm(
    node: GraphNode,
    pending: Map<number, GraphNode>,
    argOf: (node: GraphNode, at: number) => tf.Tensor,
  ): { y: tf.Tensor; relu: GraphNode } | undefined {
    const at = node.inputs.findIndex((t) => {
      const norm = pending.get(t.id);
      const block = norm && this.normBlocks.get(norm);
      return block !== undefined && (block.add ?? block.relu) === node;
    });
    if (at < 0) return undefined;
    const norm = pending.get(node.inputs[at].id) as GraphNode;
    const block = this.normBlocks.get(norm) as BatchNormBlock<GraphNode>;
    pending.delete(node.inputs[at].id);
    const x = argOf(norm, 0);
    // The side (the Add's other input) after the batch norm's input: it may be pending too.
    const side = block.add ? argOf(node, 1 - at) : undefined;
    const y = applyBatchNormBlock(norm.layer, x, side);
    if (!y) {
      pending.set(node.inputs[at].id, norm);
      return undefined;
    }
    return { y, relu: block.relu };
  }

  /**
   * A Conv2D and the max pooling after it as one op (./conv-pool-block.ts), in the variants'
   * block layout: the variants of a shared input as output groups, of blocks as per-block
   * filters; differentiable where the pass is. Undefined where the op does not take them.
   */
  private block(
    node: GraphNode,
    pool: GraphNode,
    x: tf.Tensor,
    varied: boolean,
    options: RunOptions,
  ): tf.Tensor | undefined {
    const differentiable = options.forwardOnly !== true;
    if (!varied || !options.variants) {
      return convThenPool(node.layer, pool.layer, x, ownWeights(node.layer), differentiable);
    }
    const variants = options.variants;
    const own = node.layer as unknown as KernelLayer;
    const shared = options.shared?.has(node.inputs[0].id) === true;
    const gather = (v: tf.LayerVariable) =>
      shared ? tf.expandDims(concatVariants(variants, v), 0) : tf.stack(variantValues(variants, v));
    const weights: BlockWeights = {
      filters: gather(own.kernel as tf.LayerVariable),
      biases: own.bias ? gather(own.bias) : null,
      groups: shared ? variants.count : 1,
    };
    return convThenPool(node.layer, pool.layer, x, weights, differentiable);
  }

  /** A shared block `v` feeding a layer of the variants' blocks: repeated once per variant. */
  private blocksOf(
    id: number,
    v: tf.Tensor,
    options: RunOptions,
    tiled: Map<number, tf.Tensor>,
  ): tf.Tensor {
    if (!options.shared?.has(id) || !options.variants) return v;
    let tv = tiled.get(id);
    if (!tv) {
      tv = copies(v, options.variants.count);
      tiled.set(id, tv);
    }
    return tv;
  }

  private varies(layer: tf.layers.Layer, variants: WeightVariants): boolean {
    return layer.weights.some((w) => variants.values.has(w));
  }

  private applyNode(
    node: GraphNode,
    args: tf.Tensor[],
    withActivation: boolean,
    forwardOnly = false,
    folded?: Padding,
  ): tf.Tensor | tf.Tensor[] {
    const unfused =
      args.length === 1
        ? applyUnfused(node.layer, args[0], withActivation, readWeight, forwardOnly, folded)
        : undefined;
    if (folded && !unfused) {
      throw new Error(`internal: layer '${node.layer.name}' cannot take its padding`);
    }
    if (!unfused && !withActivation) {
      throw new Error(
        `cannot take the logits of layer '${node.layer.name}' (${node.layer.getClassName()} with a softmax activation); ` +
          `end the model with a separate softmax layer, or pass output: 'logits'`,
      );
    }
    return (unfused ??
      node.layer.apply(args.length === 1 ? args[0] : args, {
        ...node.callArgs,
        training: false,
      })) as tf.Tensor | tf.Tensor[];
  }

  /**
   * A varied layer: once per variant, with that variant's weights, on the variant's block of
   * `x` (or on all of `x` when it is a shared block); the outputs concatenated in variant order.
   */
  private applyVariants(
    node: GraphNode,
    x: tf.Tensor,
    withActivation: boolean,
    options: RunOptions,
  ): tf.Tensor {
    const variants = options.variants as WeightVariants;
    const shared = node.inputs.some((t) => options.shared?.has(t.id));
    const blocks = shared || variants.count === 1 ? undefined : tf.split(x, variants.count);
    const outs = Array.from({ length: variants.count }, (_, b) => {
      const read: WeightReader = (v) => variants.values.get(v)?.[b] ?? v.read();
      const y = applyUnfused(
        node.layer,
        blocks ? blocks[b] : x,
        withActivation,
        read,
        options.forwardOnly,
      );
      if (!y) {
        throw new Error(
          `internal: layer '${node.layer.name}' (${node.layer.getClassName()}) cannot run filtered variants`,
        );
      }
      return y;
    });
    return outs.length === 1 ? outs[0] : tf.concat(outs);
  }
}
