import * as tf from '@tensorflow/tfjs';
import { median } from '../lib/timing';

/** The time of one convolution layer's kernels on the active backend, per batch, in seconds. */
export interface ConvLayerTimes {
  layer: string;
  forward: number;
  inputGradient: number;
  filterGradient: number;
}

/** Median seconds of `repeats` runs of `run` (each given fresh inputs by `make`), after one. */
function timeKernel(
  make: () => tf.Tensor[],
  run: (inputs: tf.Tensor[]) => tf.Tensor,
  repeats: number,
): number {
  const samples: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const inputs = make();
    const start = process.hrtime.bigint();
    const out = run(inputs);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    tf.dispose([out, ...inputs]);
    if (i > 0) samples.push(elapsed);
  }
  return median(samples);
}

/**
 * Times, one by one at `batch` examples, the kernels each `Conv2D` layer of `model` runs: the
 * forward convolution (`FusedConv2D`, with the layer's bias and ReLU), its input gradient and
 * its filter gradient, with the layer's own weights and fresh random activations per run (tfjs'
 * Node backends run kernels synchronously, so no read-back is timed).
 */
export function convLayerTimes(
  model: tf.LayersModel,
  batch: number,
  repeats: number,
): ConvLayerTimes[] {
  const rows: ConvLayerTimes[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Conv2D') continue;
    const [kernel, bias] = layer.getWeights();
    const config = layer.getConfig() as {
      strides: [number, number];
      padding: 'same' | 'valid';
      activation: string;
    };
    const inShape = [batch, ...((layer.input as tf.SymbolicTensor).shape.slice(1) as number[])];
    const outShape = [batch, ...(layer.outputShape as number[]).slice(1)];
    const random = (shape: number[]) => () => [tf.randomNormal(shape)];
    const common = { strides: config.strides, pad: config.padding, dataFormat: 'NHWC' };
    const forward = timeKernel(
      random(inShape),
      ([x]) =>
        tf
          .engine()
          .runKernel('FusedConv2D', bias ? { x, filter: kernel, bias } : { x, filter: kernel }, {
            ...common,
            dilations: [1, 1],
            activation: config.activation === 'relu' ? 'relu' : 'linear',
          }) as tf.Tensor,
      repeats,
    );
    const inputGradient = timeKernel(
      random(outShape),
      ([dy]) =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropInput',
            { dy, filter: kernel },
            { ...common, inputShape: inShape },
          ) as tf.Tensor,
      repeats,
    );
    const filterGradient = timeKernel(
      () => [tf.randomNormal(inShape), tf.randomNormal(outShape)],
      ([x, dy]) =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x, dy },
            { ...common, filterShape: kernel.shape },
          ) as tf.Tensor,
      repeats,
    );
    rows.push({ layer: layer.name, forward, inputGradient, filterGradient });
  }
  return rows;
}

/**
 * The seconds a task spends in convolution kernels alone (see {@link convLayerTimes}): evaluation
 * runs each forward once a batch; an input gradient adds each layer's input gradient; a training
 * epoch runs forward and filter gradients, and input gradients of all but the first layer.
 */
export function convSecondsPerTask(
  layers: ConvLayerTimes[],
  trainBatches: number,
  evalBatches: number,
): { trainEpoch: number; evaluate: number; inputGradient: number } {
  const sum = (f: (l: ConvLayerTimes, i: number) => number) =>
    layers.reduce((s, l, i) => s + f(l, i), 0);
  return {
    trainEpoch:
      trainBatches * sum((l, i) => l.forward + l.filterGradient + (i > 0 ? l.inputGradient : 0)),
    evaluate: evalBatches * sum((l) => l.forward),
    inputGradient: evalBatches * sum((l) => l.forward + l.inputGradient),
  };
}
