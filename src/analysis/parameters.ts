import * as tf from '@tensorflow/tfjs';

/** Layer classes whose kernels are analysed by default (docs/method.md §1). */
export const DEFAULT_LAYER_CLASSES: readonly string[] = [
  'Conv1D',
  'Conv2D',
  'Conv3D',
  'Conv2DTranspose',
  'DepthwiseConv2D',
  'SeparableConv2D',
  'Dense',
];

/** Weight names (after the layer name) that are kernels. */
const KERNEL_SUFFIXES = ['kernel', 'depthwise_kernel', 'pointwise_kernel'];

/** A selection of parameters: weight names, RegExps tested against weight names, or both. */
export type ParameterSelection = Array<string | RegExp> | string | RegExp;

/** A weight tensor chosen for the analysis, with the layer that owns it. */
export interface SelectedParameter {
  name: string;
  layer: tf.layers.Layer;
  variable: tf.LayerVariable;
}

function suffixOf(name: string): string {
  const base = name.split('/').pop() ?? name;
  return base.replace(/_\d+$/, '');
}

function allWeights(model: tf.LayersModel): SelectedParameter[] {
  const out: SelectedParameter[] = [];
  const seen = new Set<string>();
  for (const layer of model.layers) {
    for (const variable of layer.weights) {
      if (seen.has(variable.name)) continue;
      seen.add(variable.name);
      out.push({ name: variable.name, layer, variable });
    }
  }
  return out;
}

/** Names of every weight of a model, to show users what they can select. */
export function weightNames(model: tf.LayersModel): string[] {
  return allWeights(model).map((p) => p.name);
}

/**
 * The parameters an analysis covers: by default the kernels of convolution and dense layers
 * (biases, BatchNorm weights and statistics left alone); with `selection`, every weight whose
 * name equals one of the strings or matches one of the RegExps, in the model's layer order.
 */
export function selectParameters(
  model: tf.LayersModel,
  selection?: ParameterSelection,
): SelectedParameter[] {
  const weights = allWeights(model);
  let chosen: SelectedParameter[];
  if (selection === undefined) {
    chosen = weights.filter(
      (p) =>
        DEFAULT_LAYER_CLASSES.includes(p.layer.getClassName()) &&
        KERNEL_SUFFIXES.includes(suffixOf(p.name)),
    );
  } else {
    const items = Array.isArray(selection) ? selection : [selection];
    const names = new Set(weights.map((p) => p.name));
    const unknown = items.filter((s): s is string => typeof s === 'string' && !names.has(s));
    if (unknown.length > 0) {
      throw new Error(
        `parameters: no weight named ${unknown.map((s) => `'${s}'`).join(', ')}; ` +
          `this model has ${weights.map((p) => p.name).join(', ')}`,
      );
    }
    chosen = weights.filter((p) =>
      items.some((s) =>
        typeof s === 'string'
          ? s === p.name
          : new RegExp(s.source, s.flags.replace('g', '')).test(p.name),
      ),
    );
  }
  if (chosen.length === 0) {
    throw new Error(
      `parameters: the selection matches no weight of this model` +
        (selection === undefined ? ' (it has no convolution or dense kernels)' : '') +
        `; its weights are ${weights.map((p) => p.name).join(', ') || 'none'}`,
    );
  }
  return chosen;
}
