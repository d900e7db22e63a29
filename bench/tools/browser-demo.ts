/**
 * The browser demo's epoch and analysis times, per backend, in Chromium and in Node on the same
 * machine: `tsc -p tsconfig.json && node dist/bench/tools/browser-demo.js [epochs]`.
 * In the browser it opens the demo (`?epochs=N&backend=…`) for wasm and webgl (when headless
 * Chromium has it); in Node it runs the same model, data, optimizer and analysis (demo/settings.ts)
 * on the backend `initBackend` picks (`TFJS_BACKEND=wasm|tensorflow|cpu` to choose).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, SynapticFilterCallback, smallCnn, type AnalysisReport } from '../../index';
import { digitsBinary, startDemoServer } from '../../cli/demo';
import { launchChromium } from '../lib/chromium';
import { MNIST_MEAN, MNIST_STD } from '../../datasets/mnist-stats';
import { DEMO } from '../../demo/settings';

interface Timing {
  where: string;
  epochs: number[];
  analyses: number[];
  error?: string;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;

async function inBrowser(backend: string, epochs: number): Promise<Timing> {
  const server = await startDemoServer();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}?epochs=${epochs}&backend=${backend}`);
    await page.waitForFunction("['done', 'error'].includes(document.body.dataset.state)", null, {
      timeout: 600_000,
    });
    const r = (await page.evaluate(
      '({ error: document.body.dataset.error, s: window.antifragile.epochSeconds, a: window.antifragile.reports.map((r) => r.seconds) })',
    )) as { error?: string; s: number[]; a: number[] };
    return { where: `Chromium ${backend}`, epochs: r.s, analyses: r.a, error: r.error };
  } finally {
    await browser.close();
    await server.close();
  }
}

async function inNode(epochs: number): Promise<Timing> {
  const choice = await initBackend({ log: () => {} });
  const n = DEMO.trainSize + DEMO.testSize;
  const bin = digitsBinary(n);
  const pixels = new Uint16Array(bin.buffer, bin.byteOffset + 4, n * 784);
  const labels = Array.from(bin.subarray(4 + n * 784 * 2));
  const xs = Float32Array.from(pixels, (v) => (v / 1000 - MNIST_MEAN) / MNIST_STD);
  const set = (from: number, k: number) =>
    tf.tidy(() => [
      tf.tensor4d(xs.subarray(from * 784, (from + k) * 784), [k, 28, 28, 1]),
      tf.oneHot(tf.tensor1d(labels.slice(from, from + k), 'int32'), 10).toFloat(),
    ]);
  const train = set(0, DEMO.trainSize);
  const test = set(DEMO.trainSize, DEMO.testSize);
  const model = smallCnn({ seed: 0 });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const analysis = new SynapticFilterCallback({
    data: { xs: test[0], ys: test[1] },
    ...DEMO.analysis,
    filters: [...DEMO.analysis.filters],
  });
  const times: number[] = [];
  let start = 0;
  const clock = new tf.CustomCallback({
    onEpochBegin: async () => {
      start = performance.now();
    },
    onEpochEnd: async (epoch) => {
      const report = analysis.reports.find((r: AnalysisReport) => r.epoch === epoch);
      times.push((performance.now() - start) / 1000 - (report?.seconds ?? 0));
    },
  });
  await model.fit(train[0], train[1], {
    epochs,
    batchSize: DEMO.batchSize,
    shuffle: false,
    callbacks: [analysis, clock],
  });
  tf.dispose([...train, ...test]);
  return {
    where: `Node ${choice.id}`,
    epochs: times,
    analyses: analysis.reports.map((r) => r.seconds),
  };
}

async function main(): Promise<void> {
  const epochs = Number(process.argv[2] ?? DEMO.epochs);
  const rows: Timing[] = [];
  for (const backend of ['wasm', 'webgl']) {
    rows.push(
      await inBrowser(backend, epochs).catch((err: unknown) => ({
        where: `Chromium ${backend}`,
        epochs: [],
        analyses: [],
        error: String(err).split('\n')[0],
      })),
    );
  }
  rows.push(await inNode(epochs));
  console.log(
    `demo: small CNN, ${DEMO.trainSize} digits, batch ${DEMO.batchSize}, analysis of ${DEMO.testSize} ` +
      `examples (${DEMO.analysis.filters.join(', ')}, ${DEMO.analysis.steps} steps); medians of ${epochs} epochs`,
  );
  console.log('| where | epoch (s) | analysis (s) |\n|---|---|---|');
  for (const r of rows) {
    const cells = r.error
      ? `— | — (${r.error})`
      : `${median(r.epochs).toFixed(2)} | ${median(r.analyses).toFixed(2)}`;
    console.log(`| ${r.where} | ${cells} |`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
