/**
 * The browser demo: trains the small CNN on the bundled MNIST digits in this tab with
 * SynapticFilterCallback and SelectiveRetrainCallback, and redraws training curves, the last
 * response curves, the label grid and the frozen layers after every analysed epoch.
 * For tests and automation: `document.body.dataset.state` goes `loading` → `training` → `done`
 * (or `error`, with `data-error`), and `window.antifragile` holds `{ reports, frozenLayers,
 * backend, numTensors, epochSeconds }` (numTensors: `tf.memory().numTensors` after each epoch).
 */
import * as tf from '@tensorflow/tfjs';
import {
  SelectiveRetrainCallback,
  SynapticFilterCallback,
  initBrowserBackend,
  smallCnn,
  type AnalysisReport,
} from '../browser';
import { MNIST_MEAN, MNIST_STD } from '../datasets/mnist-stats';
import { recordEpoch, recordReport } from '../src/experiment/epochs';
import { labelGrid } from '../src/experiment/label-grid';
import type { FrozenRecord, MetricRow } from '../src/experiment/run-folder';
import {
  frozenLayersChart,
  labelHeatmapChart,
  responseCurvesChart,
  trainingCurvesChart,
} from '../src/report/charts';
import { parseDemoQuery } from './query';
import { DEMO } from './settings';
import { drawChart, offerDownload, showFrozen, showStatus } from './view';

interface PageState {
  reports: AnalysisReport[];
  frozenLayers: string[];
  backend?: string;
  numTensors: number[];
  /** Seconds of each epoch's training (its analysis excluded: that is each report's `seconds`). */
  epochSeconds: number[];
}

const state: PageState = { reports: [], frozenLayers: [], numTensors: [], epochSeconds: [] };
(globalThis as unknown as { antifragile: PageState }).antifragile = state;

/** The served digits (see cli/demo.ts): normalised images and one-hot labels, train and test. */
async function loadDigits(
  trainSize: number,
  testSize: number,
): Promise<{ train: tf.Tensor[]; test: tf.Tensor[] }> {
  const response = await fetch('/digits.bin');
  if (!response.ok) throw new Error(`/digits.bin: HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  const count = new DataView(bytes).getUint32(0, true);
  const pixels = new Uint16Array(bytes, 4, count * 784);
  const labels = new Uint8Array(bytes, 4 + count * 784 * 2, count);
  const images = Float32Array.from(pixels, (v) => (v / 1000 - MNIST_MEAN) / MNIST_STD);
  const split = (from: number, n: number) =>
    tf.tidy(() => [
      tf.tensor4d(images.subarray(from * 784, (from + n) * 784), [n, 28, 28, 1]),
      tf.oneHot(tf.tensor1d(labels.subarray(from, from + n), 'int32'), 10).toFloat(),
    ]);
  return { train: split(0, trainSize), test: split(DEMO.trainSize, testSize) };
}

async function run(): Promise<void> {
  const { epochs, trainSize, examples, steps, filters, backend } = parseDemoQuery(location.search);
  const choice = await initBrowserBackend({ backend, wasmPaths: '/vendor/wasm/' });
  state.backend = tf.getBackend();
  showStatus(`Backend ${choice.id} (${choice.reason}); loading digits…`);
  const { train, test } = await loadDigits(trainSize, examples);
  const model = smallCnn({ seed: 0 });
  model.compile({
    optimizer: tf.train.adam(1e-3),
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
  const layers = model.layers.filter((l) => l.trainableWeights.length > 0).map((l) => l.name);
  const rows: MetricRow[] = [];
  const frozen: FrozenRecord[] = [];
  const analysis = new SynapticFilterCallback({
    data: { xs: test[0], ys: test[1] },
    ...DEMO.analysis,
    steps,
    filters,
  });
  const retrain = new SelectiveRetrainCallback({ analysis });
  let epochStart = 0;
  const view = new tf.CustomCallback({
    onEpochBegin: async () => {
      epochStart = performance.now();
    },
    onEpochEnd: async (epoch, logs) => {
      const analysed = analysis.reports.find((r) => r.epoch === epoch);
      const seconds = (performance.now() - epochStart) / 1000 - (analysed?.seconds ?? 0);
      state.epochSeconds.push(seconds);
      // The charts count epochs finished, as report.html does (src/experiment/epochs.ts).
      const finished = recordEpoch(epoch);
      rows.push({
        phase: 'train',
        epoch: finished,
        loss: Number(logs?.loss),
        acc: Number(logs?.acc),
      });
      state.reports = [...analysis.reports];
      state.frozenLayers = retrain.frozenLayers;
      frozen.push({ phase: 'train', epoch: finished, layers: retrain.frozenLayers });
      state.numTensors.push(tf.memory().numTensors);
      await redraw(rows, epochs, state.reports, frozen, layers);
      showStatus(
        `Epoch ${epoch + 1}/${epochs} on ${choice.id}: loss ${Number(logs?.loss).toFixed(3)}`,
      );
    },
  });
  document.body.dataset.state = 'training';
  // The download numbers epochs as a run folder's analysis/ files do (epochs finished).
  offerDownload(() => state.reports.map(recordReport));
  await model.fit(train[0], train[1], {
    epochs,
    batchSize: DEMO.batchSize,
    shuffle: false,
    callbacks: [analysis, retrain, view],
  });
  tf.dispose([...train, ...test]);
  model.dispose();
  showStatus(`Done: ${epochs} epochs, ${state.reports.length} analyses on ${choice.id}.`);
}

async function redraw(
  rows: MetricRow[],
  epochs: number,
  reports: AnalysisReport[],
  frozen: FrozenRecord[],
  layers: string[],
): Promise<void> {
  await drawChart('training', trainingCurvesChart(rows, epochs));
  const records = reports.map(recordReport);
  const last = records[records.length - 1];
  if (last !== undefined) {
    await drawChart('response', responseCurvesChart(last));
    await drawChart('labels', labelHeatmapChart(labelGrid('train', records)));
  }
  await drawChart('frozen', frozenLayersChart(frozen, layers));
  showFrozen(frozen[frozen.length - 1]?.layers ?? []);
}

run().then(
  () => {
    document.body.dataset.state = 'done';
  },
  (err: unknown) => {
    const text = err instanceof Error ? err.message : String(err);
    console.error(err);
    showStatus(`Error: ${text}`);
    document.body.dataset.error = text;
    document.body.dataset.state = 'error';
  },
);
