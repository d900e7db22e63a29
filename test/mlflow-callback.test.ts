/**
 * MlflowCallback inside real `model.fit` runs, against a real `mlflow server`: what it logged is
 * read back through the REST API. The analysis and retrain inputs are literal data shaped like
 * the SynapticFilterCallback's and SelectiveRetrainCallback's state.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { MlflowCallback } from '../callbacks/mlflow-callback';
import type { AnalysisReport, FilterId, Label } from '../src/analysis/types';
import { MlflowClient, MlflowConfigError, MlflowValidationError, type Run } from '../src/mlflow';
import { MlflowTestServer } from './support/mlflow-server';
import { REQUIRE_TYPESCRIPT } from './support/child-script';

let server: MlflowTestServer;
let client: MlflowClient;
let workDir: string;

beforeAll(async () => {
  server = await MlflowTestServer.start();
  client = new MlflowClient({ trackingUri: server.url });
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-callback-test-'));
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

function tinyModel(): tf.Sequential {
  const model = tf.sequential({ name: 'tiny' });
  model.add(tf.layers.dense({ units: 6, inputShape: [4], activation: 'relu', name: 'dense_1' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'dense_2' }));
  model.compile({
    optimizer: tf.train.adam(0.01),
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
  return model;
}

function tinyData(n = 24): { xs: tf.Tensor2D; ys: tf.Tensor2D } {
  const xs = tf.randomNormal([n, 4], 0, 1, 'float32', 7) as tf.Tensor2D;
  const labels = tf.tensor1d(
    Array.from({ length: n }, (_, i) => i % 3),
    'int32',
  );
  const ys = tf.oneHot(labels, 3) as tf.Tensor2D;
  labels.dispose();
  return { xs, ys };
}

/** A small report of the shape `analyze` gives, with scores that depend on the epoch. */
function literalReport(epoch: number): AnalysisReport {
  const filters: FilterId[] = ['highpass', 'pulse'];
  const label = (s: number): Label => (s < -0.02 ? 'fragile' : s > 0.02 ? 'antifragile' : 'robust');
  const parameter = (name: string, layer: string, depth: number, base: number) => ({
    name,
    layer,
    shape: [4, 6],
    size: 24,
    depth,
    evaluated: 2,
    filters: Object.fromEntries(
      filters.map((f, i) => {
        const scores = {
          clean: base - 0.01 * epoch,
          adversarial: base + 0.05 * i - 0.03 * epoch,
          difference: 0.05 * i - 0.02 * epoch,
        };
        return [
          f,
          {
            steps: [
              { progress: 0, alpha: -1, removed: 1, clean: 0.9, adversarial: 0.4 },
              { progress: 1, alpha: 1, removed: 24, clean: 0.3, adversarial: 0.3 },
            ],
            scores,
            labels: {
              clean: label(scores.clean),
              adversarial: label(scores.adversarial),
              difference: label(scores.difference),
            },
            unnormalised: { clean: false, adversarial: false },
          },
        ];
      }),
    ),
  });
  return {
    reference: { clean: 0.9, adversarial: 0.4 },
    parameters: [
      parameter('dense_1/kernel', 'dense_1', 0, 0.03),
      parameter('dense_2/kernel', 'dense_2', 0.5, -0.05),
    ],
    options: {
      epsilon: 0.1,
      steps: 2,
      filters,
      tolerance: 0.02,
      baseline: 'remaining',
      regenerate: true,
      attack: 'fgsm',
      parameters: ['dense_1/kernel', 'dense_2/kernel'],
      batchSize: 8,
      mode: 'layerwise',
    },
    backend: tf.getBackend(),
    seconds: 0.5,
    examples: 24,
    epoch,
  };
}

const steps = (history: { step: number; value: number }[]) =>
  [...history].sort((a, b) => a.step - b.step).map((m) => [m.step, m.value]);

async function metricSteps(runId: string, key: string) {
  return steps(await client.getMetricHistory(runId, key));
}

async function artifactText(runId: string, p: string): Promise<string> {
  return Buffer.from(await client.downloadArtifact(runId, p)).toString('utf8');
}

describe('MlflowCallback', () => {
  it('logs params, tags, epoch metrics, analyses, frozen layers and the model', async () => {
    const model = tinyModel();
    const { xs, ys } = tinyData();
    // State shaped like SynapticFilterCallback / SelectiveRetrainCallback, filled by a callback
    // placed before the MlflowCallback, as those are.
    const analysis = { reports: [literalReport(-1)] as AnalysisReport[] };
    const retrain = {
      frozenLayers: [] as string[],
      history: [] as { epoch: number; frozen: string[] }[],
    };
    const producer = new tf.CustomCallback({
      onEpochEnd: async (epoch) => {
        analysis.reports.push(literalReport(epoch));
        retrain.frozenLayers = epoch === 1 ? ['dense_1'] : [];
        retrain.history.push({ epoch, frozen: [...retrain.frozenLayers] });
      },
    });
    const cb = new MlflowCallback({
      trackingUri: server.url,
      experimentName: 'callback-tests',
      runName: 'full',
      params: { seed: 7 },
      tags: { purpose: 'test' },
      analysis,
      retrain,
      datasets: [
        {
          dataset: { name: 'tiny', digest: 'd1', sourceType: 'code', source: '{"n":24}' },
          tags: { 'mlflow.data.context': 'train' },
        },
      ],
    });
    const history = await model.fit(xs, ys, {
      epochs: 3,
      batchSize: 8,
      validationSplit: 0.25,
      callbacks: [producer, cb],
      verbose: 0,
    });
    const runId = cb.runId!;
    const run: Run = await client.getRun(runId);

    expect(run.info.status).toBe('FINISHED');
    expect(run.info.runName).toBe('full');
    expect(run.data.params).toMatchObject({
      seed: '7',
      epochs: '3',
      batch_size: '8',
      // fit hands callbacks a Sequential's inner model.
      'model.name': 'tiny_model',
      'model.layers': '2',
      'model.total_params': String(model.countParams()),
      'model.trainable_params': String(model.countParams()),
      'model.loss': 'categoricalCrossentropy',
      'optimizer.name': 'Adam',
      'optimizer.learningRate': '0.01',
      'analysis.epsilon': '0.1',
      'analysis.filters': '["highpass","pulse"]',
    });
    expect(run.data.tags).toMatchObject({
      purpose: 'test',
      'mlflow.source.type': 'LOCAL',
      'tfjs.backend': tf.getBackend(),
      'tfjs.version': tf.version.tfjs,
      'tfjs_antifragile.version': JSON.parse(fs.readFileSync('package.json', 'utf8')).version,
      'retrain.frozen_layers': '',
    });
    expect(run.inputs[0].dataset).toMatchObject({ name: 'tiny', digest: 'd1' });

    // Epoch logs, step = epoch, exactly the values fit returned.
    for (const key of ['loss', 'acc', 'val_loss', 'val_acc']) {
      expect(await metricSteps(runId, key)).toEqual(
        (history.history[key] as number[]).map((v, epoch) => [epoch, v]),
      );
    }
    // Every score per parameter × filter × score, at the report's epoch.
    for (const [param, key] of [
      ['dense_1/kernel', 'dense_1'],
      ['dense_2/kernel', 'dense_2'],
    ]) {
      for (const filter of ['highpass', 'pulse'] as const) {
        for (const score of ['clean', 'adversarial', 'difference'] as const) {
          expect(await metricSteps(runId, `psi_${score}/${filter}/${key}`)).toEqual(
            analysis.reports.map((r) => [
              r.epoch,
              r.parameters.find((p) => p.name === param)!.filters[filter]!.scores[score],
            ]),
          );
        }
      }
    }
    // Label counts: at epoch 2 the adversarial scores are 0.03-0.06=-0.03 (fragile) and
    // 0.08-0.06=0.02 (robust) for dense_1, and negative for dense_2.
    expect(await metricSteps(runId, 'labels_adversarial/highpass/fragile')).toEqual([
      [-1, 1],
      [0, 1],
      [1, 1],
      [2, 2],
    ]);
    expect(await metricSteps(runId, 'frozen/dense_1')).toEqual([
      [0, 0],
      [1, 1],
      [2, 0],
    ]);
    expect(await metricSteps(runId, 'retrain/frozen_layers')).toEqual([
      [0, 0],
      [1, 1],
      [2, 0],
    ]);

    // Artifacts.
    expect(JSON.parse(await artifactText(runId, 'analysis/epoch_1.json'))).toEqual(
      analysis.reports[2],
    );
    const csv = (await artifactText(runId, 'analysis/epoch_1.csv')).trim().split('\n');
    expect(csv).toHaveLength(1 + 2 * 2);
    expect(csv[1]).toMatch(/^1,dense_1\/kernel,dense_1,24,0,highpass,/);
    expect(await artifactText(runId, 'model_summary.txt')).toMatch(/dense_1 \(Dense\)/);
    expect(JSON.parse(await artifactText(runId, 'retrain/history.json'))).toEqual(retrain.history);

    const modelJson = JSON.parse(await artifactText(runId, 'model/model.json'));
    const weights = await client.downloadArtifact(runId, 'model/weights.bin');
    expect(modelJson.weightsManifest[0].paths).toEqual(['weights.bin']);
    const loaded = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: modelJson.modelTopology,
        weightSpecs: modelJson.weightsManifest[0].weights,
        weightData: weights.buffer.slice(
          weights.byteOffset,
          weights.byteOffset + weights.byteLength,
        ),
      }),
    );
    const expected = model.predict(xs) as tf.Tensor;
    const actual = loaded.predict(xs) as tf.Tensor;
    expect(Array.from(await actual.data())).toEqual(Array.from(await expected.data()));
    tf.dispose([xs, ys, expected, actual]);
    loaded.dispose();
    model.dispose();
  });

  it('ends the run FAILED when training throws', async () => {
    const model = tinyModel();
    const { xs, ys } = tinyData();
    const cb = new MlflowCallback({
      trackingUri: server.url,
      experimentName: 'callback-tests',
      runName: 'fails',
      logModel: false,
    });
    const boom = new tf.CustomCallback({
      onEpochEnd: async (epoch) => {
        if (epoch === 1) throw new Error('boom at epoch 1');
      },
    });
    await expect(
      cb.track(model.fit(xs, ys, { epochs: 4, batchSize: 8, callbacks: [cb, boom], verbose: 0 })),
    ).rejects.toThrow('boom at epoch 1');
    const run = await client.getRun(cb.runId!);
    expect(run.info.status).toBe('FAILED');
    expect(run.data.tags['tfjs_antifragile.error']).toBe('Error: boom at epoch 1');
    expect(await artifactText(cb.runId!, 'error.txt')).toMatch(/boom at epoch 1/);
    expect((await metricSteps(cb.runId!, 'loss')).map(([step]) => step)).toEqual([0, 1]);
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it('works alone, configured from MLFLOW_* variables', async () => {
    const saved = { ...process.env };
    process.env.MLFLOW_TRACKING_URI = server.url;
    process.env.MLFLOW_EXPERIMENT_NAME = 'from-env';
    try {
      const model = tinyModel();
      const { xs, ys } = tinyData();
      const cb = new MlflowCallback({ logModel: false, logModelSummary: false });
      await model.fit(xs, ys, { epochs: 2, batchSize: 12, callbacks: [cb], verbose: 0 });
      const experiment = await client.getExperimentByName('from-env');
      const found = await client.searchRuns({ experimentIds: [experiment!.experimentId] });
      expect(found.runs.map((r) => r.info.runId)).toEqual([cb.runId]);
      expect(found.runs[0].info.status).toBe('FINISHED');
      expect((await metricSteps(cb.runId!, 'loss')).map(([step]) => step)).toEqual([0, 1]);
      tf.dispose([xs, ys]);
      model.dispose();
    } finally {
      process.env = saved;
    }
  });

  it('fails early on bad configuration, and reports logging errors', async () => {
    const saved = { ...process.env };
    delete process.env.MLFLOW_TRACKING_URI;
    try {
      expect(() => new MlflowCallback({ experimentName: 'x' })).toThrow(MlflowConfigError);
    } finally {
      process.env = saved;
    }
    expect(() => new MlflowCallback({ trackingUri: server.url, closeTimeoutMs: -1 })).toThrow(
      /option 'closeTimeoutMs'/,
    );

    const model = tinyModel();
    const { xs, ys } = tinyData();
    const fit = (cb: MlflowCallback) =>
      model.fit(xs, ys, { epochs: 1, batchSize: 12, callbacks: [cb], verbose: 0 });
    // Strict (the default under Jest): the refused tag key stops training with the error.
    const strict = new MlflowCallback({
      trackingUri: server.url,
      tags: { 'a//b': 'x' },
      warn: () => undefined,
    });
    expect(strict.strict).toBe(true);
    await expect(fit(strict)).rejects.toThrow(MlflowValidationError);
    // Not strict: a warning says what went wrong, and training goes on.
    const warnings: string[] = [];
    const lenient = new MlflowCallback({
      trackingUri: server.url,
      tags: { 'a//b': 'x' },
      strict: false,
      warn: (m) => warnings.push(m),
    });
    const history = await fit(lenient);
    expect(history.epoch).toEqual([0]);
    expect(warnings.join('\n')).toMatch(/could not start the MLflow run.*tag key "a\/\/b"/s);
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it('ends the run KILLED on SIGINT and exits as Node would', async () => {
    const root = path.resolve(__dirname, '..');
    const script = path.join(workDir, 'sigint-child.js');
    fs.writeFileSync(
      script,
      `${REQUIRE_TYPESCRIPT}const tf = require('@tensorflow/tfjs');
const { initBackend } = require(${JSON.stringify(path.join(root, 'src/kernels/backend.ts'))});
const { MlflowCallback } = require(${JSON.stringify(path.join(root, 'callbacks/mlflow-callback.ts'))});
(async () => {
  await initBackend({ log: () => undefined });
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 2, inputShape: [3] }));
  model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
  const xs = tf.ones([8, 3]);
  const ys = tf.zeros([8, 2]);
  const cb = new MlflowCallback({ experimentName: 'sigint', runName: 'interrupted', logModel: false });
  const interrupt = new tf.CustomCallback({
    onEpochEnd: async (epoch) => {
      if (epoch === 1) {
        console.log('RUN_ID=' + cb.runId);
        process.kill(process.pid, 'SIGINT');
        await new Promise((resolve) => setTimeout(resolve, 5000));
      }
    },
  });
  await model.fit(xs, ys, { epochs: 1000, callbacks: [cb, interrupt], verbose: 0 });
  console.log('FIT_RETURNED');
})();
`,
    );
    const child = spawn(process.execPath, [script], {
      cwd: workDir,
      env: {
        ...process.env,
        NODE_PATH: path.join(root, 'node_modules'),
        MLFLOW_TRACKING_URI: server.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('exit', (c, s) => resolve([c, s])),
    );
    expect({ code, signal, fitReturned: output.includes('FIT_RETURNED') }).toEqual({
      code: null,
      signal: 'SIGINT',
      fitReturned: false,
    });
    const runId = /RUN_ID=([0-9a-f]+)/.exec(output)?.[1];
    expect(runId).toBeDefined();
    const run = await client.getRun(runId!);
    expect(run.info.status).toBe('KILLED');
    expect(run.info.endTime).toBeGreaterThan(0);
    expect((await metricSteps(runId!, 'loss')).map(([step]) => step)).toEqual([0, 1]);
  });
});

describe('MlflowCallback during a server outage', () => {
  it('spools while the server is down mid-training and delivers every metric in order', async () => {
    const model = tinyModel();
    const { xs, ys } = tinyData();
    const localDir = path.join(workDir, 'outage-mid');
    const cb = new MlflowCallback({
      trackingUri: server.url,
      experimentName: 'outage',
      runName: 'mid-training',
      localDir,
      outbox: { reconnectMs: 100, maxReconnectMs: 500 },
      analysis: { reports: [] },
    });
    const spoolSeen: boolean[] = [];
    const chaos = new tf.CustomCallback({
      onEpochEnd: async (epoch) => {
        if (epoch === 0) await server.stop();
        if (epoch >= 1 && epoch <= 2) spoolSeen.push(fs.existsSync(cb.run!.spoolPath));
        if (epoch === 2) await server.restart();
      },
    });
    const history = await model.fit(xs, ys, {
      epochs: 5,
      batchSize: 8,
      callbacks: [cb, chaos],
      verbose: 0,
    });
    expect(spoolSeen).toEqual([true, true]);
    expect(fs.existsSync(cb.run!.spoolPath)).toBe(false);
    const runId = cb.runId!;
    for (const key of ['loss', 'acc']) {
      const logged = await client.getMetricHistory(runId, key);
      expect(logged.map((m) => [m.step, m.value])).toEqual(
        (history.history[key] as number[]).map((v, epoch) => [epoch, v]),
      );
    }
    const run = await client.getRun(runId);
    expect(run.info.status).toBe('FINISHED');
    expect((await client.listArtifacts(runId, 'model')).map((f) => f.path).sort()).toEqual([
      'model/MLmodel',
      'model/model.json',
      'model/weights.bin',
    ]);
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it('keeps the run end in the spool when the server stays down, and flush() delivers it', async () => {
    const model = tinyModel();
    const { xs, ys } = tinyData();
    const warnings: string[] = [];
    const cb = new MlflowCallback({
      trackingUri: server.url,
      experimentName: 'outage',
      runName: 'down-at-end',
      localDir: path.join(workDir, 'outage-end'),
      closeTimeoutMs: 500,
      outbox: { reconnectMs: 100, maxReconnectMs: 200 },
      warn: (m) => warnings.push(m),
    });
    const chaos = new tf.CustomCallback({
      onEpochEnd: async (epoch) => {
        if (epoch === 0) await server.stop();
      },
    });
    const history = await model.fit(xs, ys, {
      epochs: 3,
      batchSize: 8,
      callbacks: [cb, chaos],
      verbose: 0,
    });
    const spoolPath = cb.run!.spoolPath;
    expect(warnings.join('\n')).toMatch(/operation\(s\) wait in .*mlflow-spool\.jsonl/);
    const spooled = fs.readFileSync(spoolPath, 'utf8').trim().split('\n').slice(1);
    expect(spooled.map((line) => JSON.parse(line).kind)).toContain('end');

    await server.restart();
    const result = await cb.flush(30_000);
    expect(result).toMatchObject({ pending: 0, offline: false, errors: [] });
    expect(fs.existsSync(spoolPath)).toBe(false);
    const runId = cb.runId!;
    expect((await client.getRun(runId)).info.status).toBe('FINISHED');
    const logged = await client.getMetricHistory(runId, 'loss');
    expect(logged.map((m) => [m.step, m.value])).toEqual(
      (history.history.loss as number[]).map((v, epoch) => [epoch, v]),
    );
    tf.dispose([xs, ys]);
    model.dispose();
  });
});
