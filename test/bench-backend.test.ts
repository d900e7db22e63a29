import * as tf from '@tensorflow/tfjs';
import {
  checkRatio,
  MIN_RATIO_NOISE,
  relativeSpread,
  TASKS,
  targetVerdict,
  VariantResult,
  wasmTargetRows,
  wasmTargetTable,
} from '../bench/backend';
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

describe("issue 10's wasm targets", () => {
  const flops = {
    forwardPerExample: 1.41e6,
    trainEpoch: 8.48e9,
    evaluate: 1.41e9,
    inputGradient: 2.83e9,
  };
  const variant = (id: string, times: number[], gflops: number, ratios?: number[]) =>
    ({
      id,
      label: id,
      matmulGflops: gflops,
      notes: [],
      cells: Object.fromEntries(
        TASKS.map((t, i) => [t, { seconds: times[i], ratio: ratios?.[i] }]),
      ),
    }) as unknown as VariantResult;
  const torch = variant('torch', [0.134, 0.025, 0.066, 0.108], 341);

  it('computes the bound at wasm’s own matmul rate and the goal per task', () => {
    const wasm = variant('wasm', [0.5, 0.06, 0.3, 0.2], 30, [3.6, 2.4, 4.5, 1.8]);
    const rows = wasmTargetRows(flops, [torch, wasm]);
    expect(rows.map((r) => r.task)).toEqual([...TASKS]);
    const [train, evaluate, grad, grad1] = rows;
    expect(train.boundSeconds).toBeCloseTo(8.48 / 30, 10);
    expect(train.targetSeconds).toBeCloseTo(3 * 0.134, 10);
    expect(train.beyondBound).toBe(false);
    expect(train.goalSeconds).toBeCloseTo(0.402, 10);
    expect(train.overTarget).toBeCloseTo(1.2, 10); // the paired ratio ÷ 3
    expect(train.overGoal).toBeCloseTo(1.2, 10);
    // 1× PyTorch's 0.025 s is beyond the bound of 1.41 GFLOP at 30 GFLOP/s (0.047 s)
    expect(evaluate.beyondBound).toBe(true);
    expect(evaluate.goalSeconds).toBeCloseTo(0.047, 10);
    expect(evaluate.overBound).toBeCloseTo(0.06 / 0.047, 10);
    expect(evaluate.overGoal).toBe(evaluate.overBound);
    expect(grad.beyondBound).toBe(true);
    expect(grad1.beyondBound).toBe(false); // 1× 0.108 s > 0.0943 s
    expect(grad1.overGoal).toBeCloseTo(1.8, 10);
    const table = wasmTargetTable(rows);
    expect(table).toMatch(/3× PyTorch = 0\.402 s/);
    expect(table).toMatch(/yes: goal = bound/);
    expect(table).toMatch(/no \(1\.20× the goal\)/);
    expect(wasmTargetTable(rows, true)).toMatch(/no verdict \(busy\)/);
  });

  it('shows the bound without PyTorch, and nothing without wasm', () => {
    const wasm = variant('wasm', [0.5, 0.06, 0.3, 0.2], 30);
    const rows = wasmTargetRows(flops, [wasm]);
    expect(rows[0].targetSeconds).toBeUndefined();
    expect(rows[0].overBound).toBeCloseTo(0.5 / (8.48 / 30), 10);
    expect(wasmTargetTable(rows)).toMatch(/3× PyTorch/);
    expect(wasmTargetRows(flops, [torch])).toEqual([]);
  });
});

describe('paired ratios against the ratio of medians', () => {
  it('measures the run’s noise as the relative median absolute deviation', () => {
    expect(relativeSpread([1, 1, 1])).toBe(0);
    // median 2, deviations 1, 0, 1 → 1 / 2
    expect(relativeSpread([1, 2, 3])).toBe(0.5);
  });

  it('agrees when the pairing is sound, refuses when a peer sample was slowed', () => {
    const sound = checkRatio({
      samples: [0.2, 0.21, 0.19],
      torchSamples: [0.1, 0.1, 0.1],
      ratio: 2.05,
      seconds: 0.2,
    });
    expect(sound?.ofMedians).toBeCloseTo(2, 12);
    expect(sound?.noise).toBeCloseTo(0.05, 12); // spread 0.05 + 0
    expect(sound?.agree).toBe(true);
    // Issue 20's run: wasm 0.162 s beside PyTorch's 0.0385 s, yet a paired ratio of 0.368×.
    const stolen = checkRatio({
      samples: [0.16, 0.162, 0.165],
      torchSamples: [0.0385, 0.0385, 0.0385],
      ratio: 0.368,
      seconds: 0.162,
    });
    expect(stolen?.ofMedians).toBeCloseTo(0.162 / 0.0385, 12);
    expect(stolen?.agree).toBe(false);
    expect(checkRatio({ seconds: 1, samples: [1] })).toBeUndefined();
  });

  it('never falls below the minimum noise', () => {
    const check = checkRatio({ samples: [1, 1], torchSamples: [1, 1], ratio: 1.04, seconds: 1 });
    expect(check?.noise).toBe(MIN_RATIO_NOISE);
    expect(check?.agree).toBe(true);
  });

  it('gives no verdict on a target when the ratios disagree', () => {
    const flops = {
      forwardPerExample: 1.41e6,
      trainEpoch: 8.48e9,
      evaluate: 1.41e9,
      inputGradient: 2.83e9,
    };
    const cell = (own: number, peer: number, paired: number) => ({
      seconds: own,
      samples: [own, own, own],
      torchSamples: [peer, peer, peer],
      ratio: paired,
    });
    const wasm = {
      id: 'wasm',
      label: 'wasm',
      matmulGflops: 30,
      notes: [],
      cells: {
        trainEpoch: cell(0.5, 0.2, 0.9), // of medians 2.5×: the pairing failed
        evaluate: cell(0.06, 0.025, 2.4),
        inputGradient: cell(0.3, 0.2, 1.5),
        inputGradientOneBatch: cell(0.09, 0.1, 0.9),
      },
    } as unknown as VariantResult;
    const torch = {
      id: 'torch',
      label: 'torch',
      notes: [],
      cells: {
        trainEpoch: { seconds: 0.2 },
        evaluate: { seconds: 0.025 },
        inputGradient: { seconds: 0.2 },
        inputGradientOneBatch: { seconds: 0.1 },
      },
    } as unknown as VariantResult;
    const [train, evaluate, grad, grad1] = wasmTargetRows(flops, [torch, wasm]);
    expect(train.ratios?.agree).toBe(false);
    expect(targetVerdict(train, false)).toMatch(/no verdict \(paired and median ratios disagree/);
    // Beyond the bound the goal is the bound: PyTorch's pairing does not enter the verdict.
    expect(evaluate.beyondBound).toBe(true);
    expect(targetVerdict(evaluate, false)).toMatch(/^no \(/);
    expect(targetVerdict(grad, false)).toBe('no (1.50× the goal)');
    expect(targetVerdict(grad1, false)).toBe('yes');
    expect(targetVerdict(grad1, true)).toMatch(/no verdict \(busy\)/);
    expect(wasmTargetTable([train])).toMatch(/0\.900×, 2\.50×/);
  });
});
