/**
 * Cross-check of the demo's epoch time: whole `model.fit` calls of one epoch each (small CNN,
 * 1,000 random digits, batch 100, Adam, no callbacks), timed around the call, in Chromium on wasm
 * and in Node on the backend `initBackend` picks (`TFJS_BACKEND=wasm` to match):
 * `tsc -p tsconfig.json && TFJS_BACKEND=wasm node dist/bench/tools/browser-fit.js [epochs]`.
 */
import * as tf from '@tensorflow/tfjs';
import * as lib from '../../index';
import { startDemoServer } from '../../cli/demo';
import { launchChromium } from '../lib/chromium';

type Lib = Pick<typeof lib, 'smallCnn'>;

/** One-epoch fits of the small CNN; the seconds of each (runs in the page as text, too). */
async function fitEpochs(tfp: typeof tf, l: Lib, epochs: number): Promise<number[]> {
  const model = l.smallCnn({ seed: 0 });
  model.compile({ optimizer: tfp.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const x = tfp.randomNormal([1000, 28, 28, 1]);
  const y = tfp.oneHot(tfp.randomUniform([1000], 0, 10, 'int32') as tf.Tensor1D, 10).toFloat();
  const times: number[] = [];
  for (let e = 0; e < epochs; e++) {
    const start = performance.now();
    await model.fit(x, y, { epochs: 1, batchSize: 100, shuffle: false });
    times.push((performance.now() - start) / 1000);
  }
  tfp.dispose([x, y]);
  model.dispose();
  return times;
}

async function inChromium(epochs: number): Promise<number[]> {
  const server = await startDemoServer();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}lib.html`);
    await page.waitForFunction("document.body.dataset.state === 'done'");
    return (await page.evaluate(
      `(async () => { await tfjsAntifragile.initBrowserBackend({ backend: 'wasm', wasmPaths: '/vendor/wasm/' }); ` +
        `return (${fitEpochs.toString()})(tf, tfjsAntifragile, ${epochs}); })()`,
    )) as number[];
  } finally {
    await browser.close();
    await server.close();
  }
}

async function main(): Promise<void> {
  const epochs = Number(process.argv[2] ?? 4);
  const browser = await inChromium(epochs);
  const choice = await lib.initBackend({ log: () => {} });
  const node = await fitEpochs(tf, lib, epochs);
  const show = (t: number[]) => t.map((s) => s.toFixed(2)).join(', ');
  console.log(`whole-fit epochs (s), small CNN, 1,000 digits, batch 100:`);
  console.log(`Chromium wasm: ${show(browser)}`);
  console.log(`Node ${choice.id}: ${show(node)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
