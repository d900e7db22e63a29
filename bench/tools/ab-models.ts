/**
 * Paired A/B timing of one training step of a bench model on the native backend: tfjs-node's
 * stock kernels and optimizer code against the library's (`src/native/fast-kernels.ts`),
 * alternating step by step in one process so both see the same machine load:
 *   node dist/bench/tools/ab-models.js [--model=resnet18|shufflenet_v2_x1_0] [--batch=100]
 *     [--pairs=6]
 * Prints the median step time of each and the median of the paired ratios. `--only=small-conv`
 * compares with and without the small-map convolution kernels alone (the rest registered).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/kernels/backend';
import { buildModel, ModelName } from '../../src/models';
import {
  registerFastTensorflowKernels,
  unregisterFastTensorflowKernels,
} from '../../src/kernels/native/fast-kernels';
import {
  registerSmallConvKernels,
  unregisterSmallConvKernels,
} from '../../src/kernels/native/small-conv';
import { intArg, parseArgs } from '../lib/bench';
import { median } from '../lib/timing';

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['model', 'batch', 'pairs', 'only']);
  const only = args.get('only');
  const name = (args.get('model') ?? 'resnet18') as ModelName;
  const batch = intArg(args, 'batch', 100);
  const pairs = intArg(args, 'pairs', 6);
  await initBackend({ backend: 'tensorflow', log: () => undefined });
  const make = () => {
    const model = buildModel(name, { inputShape: [32, 32, 3], classes: 10, seed: 0 });
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    return model;
  };
  const stockModel = make();
  const fastModel = make();
  const xs = tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', 1);
  const ys = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32', 2), 10);
  const step = async (fast: boolean) => {
    if (only === 'small-conv') {
      registerFastTensorflowKernels();
      if (fast) registerSmallConvKernels();
      else unregisterSmallConvKernels();
    } else if (fast) registerFastTensorflowKernels();
    else unregisterFastTensorflowKernels();
    const t0 = process.hrtime.bigint();
    const loss = await (fast ? fastModel : stockModel).trainOnBatch(xs, ys);
    return { s: Number(process.hrtime.bigint() - t0) / 1e9, loss: loss as number };
  };
  await step(false);
  await step(true);
  const stock: number[] = [];
  const fast: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const a = await step(i % 2 === 0 ? false : true);
    const b = await step(i % 2 === 0 ? true : false);
    const [s, f] = i % 2 === 0 ? [a, b] : [b, a];
    stock.push(s.s);
    fast.push(f.s);
    ratios.push(s.s / f.s);
    console.log(
      `pair ${i + 1}: stock ${(1000 * s.s).toFixed(0)} ms (loss ${s.loss.toFixed(4)}), ` +
        `ours ${(1000 * f.s).toFixed(0)} ms (loss ${f.loss.toFixed(4)})`,
    );
  }
  registerFastTensorflowKernels();
  console.log(
    `${name} batch ${batch}: stock ${(1000 * median(stock)).toFixed(0)} ms/step, ours ` +
      `${(1000 * median(fast)).toFixed(0)} ms/step; median stock ÷ ours ${median(ratios).toFixed(2)}×`,
  );
  tf.dispose([xs, ys]);
  stockModel.dispose();
  fastModel.dispose();
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
