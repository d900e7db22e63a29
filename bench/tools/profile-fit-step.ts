/**
 * Where one training step of the small CNN spends its time, kernel by kernel:
 *   node dist/bench/tools/profile-fit-step.js [--fast] [--steps=N]
 * Runs `model.fit` on one batch of 100 digits under `tf.profile`, `steps` times after warm-up,
 * and prints the kernels sorted by their mean time per step. `--fast` registers
 * `registerFastTensorflowKernels()` first. Kernels that call other kernels (e.g. tfjs-node's
 * `Step`) are listed with their inner kernels too, so the column does not add up to the step.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendId, initBackend } from '../../src/kernels/backend';
import { smallCnn } from '../../src/models/small-cnn';
import { disposeSets, headOf, loadBenchDigits } from '../cnn/data';
import { compileForBench } from '../cnn/tasks';
import { intArg, parseArgs } from '../lib/bench';
import { registerFastTensorflowKernels } from '../lib/native-speedups';
import { markdownTable } from '../lib/table';

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['fast', 'steps', 'backend']);
  const steps = intArg(args, 'steps', 10);
  const backend = (args.get('backend') ?? 'tensorflow') as BackendId;
  await initBackend({ backend, log: () => undefined });
  if (args.has('fast')) registerFastTensorflowKernels();
  const digits = loadBenchDigits(100, 1);
  const batch = headOf(digits.train, 100);
  const model = smallCnn();
  compileForBench(model);
  const fitOnce = () => model.fit(batch.xs, batch.ys, { epochs: 1, batchSize: 100, verbose: 0 });
  for (let i = 0; i < 3; i++) await fitOnce();
  const perKernel = new Map<string, { count: number; ms: number }>();
  const start = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) {
    const info = await tf.profile(async () => {
      await fitOnce();
      return [];
    });
    for (const k of info.kernels) {
      const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
      const entry = perKernel.get(key) ?? { count: 0, ms: 0 };
      entry.count += 1;
      entry.ms += Number(k.kernelTimeMs);
      perKernel.set(key, entry);
    }
  }
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6 / steps;
  const rows = [...perKernel.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([key, v]) => [key.slice(0, 90), v.count / steps, v.ms / steps]);
  console.log(markdownTable(['kernel [input shapes]', 'calls/step', 'ms/step'], rows.slice(0, 40)));
  const calls = [...perKernel.values()].reduce((n, v) => n + v.count, 0) / steps;
  console.log(`\n${calls} kernel calls per step; ${wallMs.toFixed(1)} ms per profiled step (wall)`);
  model.dispose();
  disposeSets(digits.train, digits.eval, batch);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
