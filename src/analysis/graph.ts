import * as tf from '@tensorflow/tfjs';

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

/** Private fields of tfjs-layers' Conv2D and Dense that the unfused path reads. */
interface KernelLayer {
  kernel?: tf.LayerVariable;
  bias?: tf.LayerVariable | null;
  activation?: ActivationLike | null;
}

function isSoftmaxLayer(layer: tf.layers.Layer): boolean {
  const cls = layer.getClassName();
  return cls === 'Softmax' || (cls === 'Activation' && layer.getConfig().activation === 'softmax');
}

/**
 * Conv2D and Dense through plain (unfused) ops. tfjs-layers runs them as fused ops whose
 * gradient computes the kernel's gradient too, even when only the input's is asked for; the
 * plain ops' gradients are computed only where needed, so an attack's input gradient skips the
 * filter-gradient work. Returns undefined for layers (or configurations) it does not handle.
 */
function applyUnfused(
  layer: tf.layers.Layer,
  x: tf.Tensor,
  withActivation: boolean,
): tf.Tensor | undefined {
  const cls = layer.getClassName();
  const own = layer as unknown as KernelLayer;
  if (!own.kernel || (cls !== 'Conv2D' && cls !== 'Dense')) return undefined;
  const config = layer.getConfig();
  let y: tf.Tensor;
  if (cls === 'Conv2D') {
    if (config.dataFormat !== 'channelsLast' || x.rank !== 4) return undefined;
    const dilation = config.dilationRate as number | [number, number];
    y = tf.conv2d(
      x as tf.Tensor4D,
      own.kernel.read() as tf.Tensor4D,
      config.strides as [number, number],
      config.padding as 'same' | 'valid',
      'NHWC',
      Array.isArray(dilation) ? [dilation[0], dilation[1]] : dilation,
    );
  } else {
    if (x.rank !== 2) return undefined;
    y = tf.matMul(x as tf.Tensor2D, own.kernel.read() as tf.Tensor2D);
  }
  if (own.bias) y = tf.add(y, own.bias.read());
  if (withActivation && own.activation) y = own.activation.apply(y);
  return y;
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
  private readonly inputIds: number[];
  private readonly outputId: number;

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

  /** Runs the suffix of `split` from cached frontier tensors and returns the model output. */
  suffixOutput(split: GraphSplit, frontier: tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const feed = new Map<number, tf.Tensor>();
      split.frontier.forEach((t, i) => feed.set(t.id, frontier[i]));
      const out = this.run(split.suffix, feed).get(this.outputId);
      if (!out) throw new Error('internal: the model output was not computed');
      return out;
    });
  }

  /** Runs the whole graph (equivalent to `model.predict` on one batch). */
  predict(xs: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const out = this.run(this.nodes, this.feedInputs(xs)).get(this.outputId);
      if (!out) throw new Error('internal: the model output was not computed');
      return out;
    });
  }

  /** The model output through the same ops as {@link logits}, softmax kept. Differentiable. */
  raw(xs: tf.Tensor): tf.Tensor {
    const out = this.run(this.nodes, this.feedInputs(xs)).get(this.outputId);
    if (!out) throw new Error('internal: the model output was not computed');
    return out;
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
   * end in a softmax. Differentiable (no tidy: callers run it under `tf.grad`).
   */
  logits(xs: tf.Tensor): tf.Tensor {
    const values = this.run(this.nodes, this.feedInputs(xs), true);
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
    stripSoftmax = false,
  ): Map<number, tf.Tensor> {
    const values = new Map(feed);
    const last = this.nodes[this.nodes.length - 1];
    for (const node of nodes) {
      const args = node.inputs.map((t) => {
        const v = values.get(t.id);
        if (!v) throw new Error(`internal: input ${t.name} of layer ${node.layer.name} is missing`);
        return v;
      });
      const strip = stripSoftmax && node === last;
      if (strip && isSoftmaxLayer(node.layer)) {
        values.set(node.outputs[0].id, args[0]);
        continue;
      }
      const withActivation = !(strip && node.layer.getConfig().activation === 'softmax');
      const unfused =
        args.length === 1 ? applyUnfused(node.layer, args[0], withActivation) : undefined;
      if (!unfused && !withActivation) {
        throw new Error(
          `cannot take the logits of layer '${node.layer.name}' (${node.layer.getClassName()} with a softmax activation); ` +
            `end the model with a separate softmax layer, or pass output: 'logits'`,
        );
      }
      const result = (unfused ??
        node.layer.apply(args.length === 1 ? args[0] : args, {
          ...node.callArgs,
          training: false,
        })) as tf.Tensor | tf.Tensor[];
      const outs = Array.isArray(result) ? result : [result];
      node.outputs.forEach((t, i) => values.set(t.id, outs[i]));
    }
    return values;
  }
}
