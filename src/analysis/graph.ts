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

  private feedInputs(xs: tf.Tensor): Map<number, tf.Tensor> {
    if (this.inputIds.length !== 1) {
      throw new Error(`the analysis needs a model with one input; got ${this.inputIds.length}`);
    }
    return new Map([[this.inputIds[0], xs]]);
  }

  private run(nodes: GraphNode[], feed: Map<number, tf.Tensor>): Map<number, tf.Tensor> {
    const values = new Map(feed);
    for (const node of nodes) {
      const args = node.inputs.map((t) => {
        const v = values.get(t.id);
        if (!v) throw new Error(`internal: input ${t.name} of layer ${node.layer.name} is missing`);
        return v;
      });
      const result = node.layer.apply(args.length === 1 ? args[0] : args, {
        ...node.callArgs,
        training: false,
      }) as tf.Tensor | tf.Tensor[];
      const outs = Array.isArray(result) ? result : [result];
      node.outputs.forEach((t, i) => values.set(t.id, outs[i]));
    }
    return values;
  }
}
