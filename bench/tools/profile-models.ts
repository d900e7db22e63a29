/**
 * Where one training step of the bench models spends its time on the native `tensorflow`
 * backend, per native TensorFlow op (the binding's `executeOp`, timed around each call, so the
 * times include the binding's overhead but no tfjs JavaScript):
 *   node dist/bench/tools/profile-models.js [--model=resnet18|shufflenet_v2_x1_0]
 *     [--batch=100] [--steps=3] [--stock] [--top=40]
 * `--stock` unregisters the library's faster kernels (`src/native/fast-kernels.ts`) first.
 * Prints ops sorted by time per step, with input shapes, and the share of the step they cover
 * (the rest is JavaScript: tfjs' tape, layers, optimizer bookkeeping).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/kernels/backend';
import { buildModel, ModelName } from '../../src/models';
import { intArg, parseArgs } from '../lib/bench';
import { withoutFastTensorflowKernels } from '../lib/native-speedups';
import { markdownTable } from '../lib/table';

interface Binding {
  executeOp(name: string, attrs: unknown[], inputs: number[], outputs: number): unknown;
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['model', 'batch', 'steps', 'stock', 'top', 'shapes']);
  const name = (args.get('model') ?? 'resnet18') as ModelName;
  const batch = intArg(args, 'batch', 100);
  const steps = intArg(args, 'steps', 3);
  const top = intArg(args, 'top', 40);
  await initBackend({ backend: 'tensorflow', log: () => undefined });
  if (args.has('stock')) withoutFastTensorflowKernels();
  const backend = tf.backend() as unknown as {
    binding: Binding;
    tensorMap: { get(id: unknown): { shape: number[] } | undefined };
  };
  const binding = backend.binding;
  // The binding's own properties are read-only: put a wrapper in front of it.
  const wrapper = Object.create(binding) as Binding;
  (backend as { binding: Binding }).binding = wrapper;
  const model = buildModel(name, { inputShape: [32, 32, 3], classes: 10, seed: 0 });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const xs = tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', 1);
  const ys = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32', 2), 10);
  for (let i = 0; i < 2; i++) await model.trainOnBatch(xs, ys);
  const withShapes = args.has('shapes');
  const perOp = new Map<string, { count: number; ms: number }>();
  const original = binding.executeOp.bind(binding);
  const timed: Binding['executeOp'] = (op, attrs, inputs, outputs) => {
    const t0 = process.hrtime.bigint();
    const result = original(op, attrs, inputs, outputs);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const key = withShapes ? `${op} ${shapesOf(result)}` : op;
    const entry = perOp.get(key) ?? { count: 0, ms: 0 };
    entry.count += 1;
    entry.ms += ms;
    perOp.set(key, entry);
    return result;
  };
  Object.defineProperty(wrapper, 'executeOp', { value: timed });
  const start = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) await model.trainOnBatch(xs, ys);
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6 / steps;
  backend.binding = binding;
  const total = [...perOp.values()].reduce((s, v) => s + v.ms, 0) / steps;
  const calls = [...perOp.values()].reduce((s, v) => s + v.count, 0) / steps;
  const rows = [...perOp.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, top)
    .map(([key, v]) => [
      key.slice(0, 100),
      v.count / steps,
      Number((v.ms / steps).toFixed(2)),
      `${((100 * v.ms) / steps / wallMs).toFixed(1)}%`,
    ]);
  console.log(`${name}, batch ${batch}, ${steps} steps`);
  console.log(markdownTable(['native op', 'calls/step', 'ms/step', 'of step'], rows));
  console.log(
    `\n${calls} native calls per step taking ${total.toFixed(1)} ms; step ${wallMs.toFixed(1)} ms` +
      ` (wall); outside native ops ${(wallMs - total).toFixed(1)} ms`,
  );
  tf.dispose([xs, ys]);
  model.dispose();
}

function shapesOf(result: unknown): string {
  const list = Array.isArray(result) ? result : [result];
  return list
    .map((m) => JSON.stringify((m as { shape?: number[] }).shape ?? []))
    .join(',')
    .replace(/"/g, '');
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
