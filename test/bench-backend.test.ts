import * as tf from '@tensorflow/tfjs';
import { countMacs, taskFlops } from '../bench/cnn/flops';
import { inputGradientSign, logitsOf } from '../bench/cnn/tasks';
import { parseArgs } from '../bench/lib/bench';
import { markdownTable } from '../bench/lib/table';
import { median, timeIt } from '../bench/lib/timing';
import { smallCnn } from '../src/models/small-cnn';

describe('bench helpers', () => {
  it('median and timeIt count warm-ups and repeats', async () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    let calls = 0;
    const t = await timeIt(() => calls++, { warmup: 2, repeats: 3 });
    expect(calls).toBe(5);
    expect(t.samples).toHaveLength(3);
    await expect(timeIt(() => 0, { repeats: 0 })).rejects.toThrow(/repeats/);
  });

  it('prints a markdown table with dashes for missing cells', () => {
    const text = markdownTable(
      ['a', 'b'],
      [
        ['x', 0.12345],
        ['y', null],
      ],
    );
    expect(text.split('\n')).toEqual([
      '| a |     b |',
      '|:--|------:|',
      '| x | 0.123 |',
      '| y |     – |',
    ]);
  });

  it('rejects unknown arguments', () => {
    expect(parseArgs(['--repeats=3'], ['repeats']).get('repeats')).toBe('3');
    expect(() => parseArgs(['--nope'], ['repeats'])).toThrow(/unknown argument/);
  });

  it('counts the small CNN’s multiply-accumulates', () => {
    const model = smallCnn();
    const macs = countMacs(model).map((r) => r.macs);
    // conv1 26·26·16·9, conv2 11·11·32·144, dense 800·64 and 64·10
    expect(macs).toEqual([97344, 557568, 51200, 640]);
    expect(taskFlops(model, 10, 5).trainEpoch).toBe(3 * 2 * 706752 * 10);
    model.dispose();
  });
});

describe('logits and input gradient', () => {
  it('logitsOf matches the model’s softmax input and leaks no tensors', async () => {
    const model = smallCnn();
    const xs = tf.randomNormal([4, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 10).toFloat() as tf.Tensor2D;
    const probs = model.predict(xs) as tf.Tensor;
    const fromLogits = tf.softmax(logitsOf(model, xs));
    expect(tf.max(tf.abs(tf.sub(probs, fromLogits))).dataSync()[0]).toBeLessThan(1e-6);
    tf.dispose([probs, fromLogits]);
    const before = tf.memory().numTensors;
    await inputGradientSign(model, { xs, ys }, 2);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([xs, ys]);
    model.dispose();
  });
});
