/**
 * MlflowClient and MlflowRun against a real `mlflow server` (see test/support/mlflow-server.ts):
 * what the client writes is read back through the REST API.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  MLFLOW_LIMITS,
  MlflowClient,
  MlflowConfigError,
  MlflowRequestError,
  MlflowRun,
  MlflowUnavailableError,
  MlflowValidationError,
  OVERSIZED_TAG_PREFIX,
  keyProblem,
  normalizeBatch,
  resolveMlflowConfig,
  sanitizeKey,
  splitBatch,
  Spool,
} from '../src/mlflow';
import { authorizationHeader } from '../src/mlflow/config';
import { freePort, MlflowTestServer } from './support/mlflow-server';

let server: MlflowTestServer;
let client: MlflowClient;
let workDir: string;

beforeAll(async () => {
  server = await MlflowTestServer.start();
  client = new MlflowClient({ trackingUri: server.url });
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-client-test-'));
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

async function newRun(name: string, tags?: Record<string, string>) {
  const exp = await client.getOrCreateExperiment('client-tests');
  return client.createRun({ experimentId: exp.experimentId, runName: name, tags });
}

/** POSTs a raw log-batch, bypassing our checks, and returns the HTTP status. */
async function rawLogBatch(runId: string, body: object): Promise<number> {
  const r = await fetch(`${server.url}/api/2.0/mlflow/runs/log-batch`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ run_id: runId, ...body }),
  });
  await r.arrayBuffer();
  return r.status;
}

describe('configuration', () => {
  it('reads the MLFLOW_* variables; options win', () => {
    const env = {
      MLFLOW_TRACKING_URI: 'http://example.org:5000/mlflow/',
      MLFLOW_TRACKING_USERNAME: 'ann',
      MLFLOW_TRACKING_PASSWORD: 's3cret',
      MLFLOW_EXPERIMENT_NAME: 'from-env',
    };
    const config = resolveMlflowConfig({}, env);
    expect(config.trackingUri).toBe('http://example.org:5000/mlflow');
    expect(config.experimentName).toBe('from-env');
    expect(authorizationHeader(config.auth)).toBe(
      `Basic ${Buffer.from('ann:s3cret').toString('base64')}`,
    );
    const withToken = resolveMlflowConfig(
      { experimentName: 'mine' },
      { MLFLOW_TRACKING_URI: 'https://h', MLFLOW_TRACKING_TOKEN: 'tok' },
    );
    expect(authorizationHeader(withToken.auth)).toBe('Bearer tok');
    expect(withToken.experimentName).toBe('mine');
    expect(resolveMlflowConfig({ trackingUri: 'http://h' }, {}).experimentName).toBe('Default');
  });

  it('says what is wrong with a configuration', () => {
    expect(() => resolveMlflowConfig({}, {})).toThrow(/MLFLOW_TRACKING_URI/);
    expect(() => resolveMlflowConfig({ trackingUri: 'file:///tmp/mlruns' }, {})).toThrow(
      MlflowConfigError,
    );
    expect(() => resolveMlflowConfig({ trackingUri: 'http://h', username: 'ann' }, {})).toThrow(
      /password/,
    );
  });
});

describe('keys', () => {
  const samples = [
    'loss',
    'val_acc',
    'psi_adversarial/highpass/conv2d_1',
    'a b:c-d.e',
    'ünïcode',
    'a//b',
    '/lead',
    'trail/',
    'x/../y',
    './x',
    'has,comma',
    'paren(1)',
    'k'.repeat(251),
    '',
  ];

  it('keyProblem agrees with the server, and sanitizeKey gives keys it accepts', async () => {
    const run = await newRun('keys');
    for (const key of samples) {
      const status = await rawLogBatch(run.runId, {
        metrics: [{ key, value: 1, timestamp: 1, step: 0 }],
      });
      expect({ key, accepted: status === 200 }).toEqual({
        key,
        accepted: keyProblem(key) === undefined,
      });
      const clean = sanitizeKey(key);
      expect(keyProblem(clean)).toBeUndefined();
      if (keyProblem(key) === undefined) expect(clean).toBe(key);
    }
    const cleaned = samples.map(sanitizeKey);
    await client.logBatch(run.runId, {
      metrics: cleaned.map((key) => ({ key, value: 2, step: 1 })),
    });
    const back = await client.getRun(run.runId);
    for (const key of cleaned) expect(back.data.metrics[key]?.value).toBe(2);
  });

  it('uses the batch limits the server enforces', async () => {
    const run = await newRun('limits');
    const metrics = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ key: 'm', value: i, timestamp: 1, step: i }));
    const params = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ key: `p${i}`, value: 'v' }));
    expect(await rawLogBatch(run.runId, { metrics: metrics(MLFLOW_LIMITS.metricsPerBatch) })).toBe(
      200,
    );
    expect(
      await rawLogBatch(run.runId, { metrics: metrics(MLFLOW_LIMITS.metricsPerBatch + 1) }),
    ).toBe(400);
    expect(await rawLogBatch(run.runId, { params: params(MLFLOW_LIMITS.paramsPerBatch + 1) })).toBe(
      400,
    );
  });

  it('refuses an invalid key before sending, naming it', async () => {
    const run = await newRun('bad-key');
    await expect(
      client.logBatch(run.runId, { metrics: [{ key: 'a//b', value: 1 }] }),
    ).rejects.toThrow(MlflowValidationError);
    await expect(client.logBatch(run.runId, { params: { 'x(1)': 1 } })).rejects.toThrow(
      /param key "x\(1\)"/,
    );
  });
});

describe('experiments and runs', () => {
  it('gets or creates an experiment, once', async () => {
    expect(await client.getExperimentByName('no-such-experiment')).toBeUndefined();
    const a = await client.getOrCreateExperiment('exp-once');
    const b = await client.getOrCreateExperiment('exp-once');
    expect(b.experimentId).toBe(a.experimentId);
    expect(a.name).toBe('exp-once');
    // the MLflow 3 UI opens it in the classic training view, not the GenAI one
    expect((await client.getExperimentByName('exp-once'))?.tags['mlflow.experimentKind']).toBe(
      'custom_model_development',
    );
  });

  it('marks an experiment made elsewhere as model training, and leaves a chosen kind alone', async () => {
    const plain = await client.createExperiment('made-elsewhere');
    await client.getOrCreateExperiment('made-elsewhere');
    const tags = (await client.getExperimentByName('made-elsewhere'))?.tags;
    expect(tags?.['mlflow.experimentKind']).toBe('custom_model_development');
    expect(plain).toBeTruthy();
    await client.createExperiment('genai-one', { 'mlflow.experimentKind': 'genai_development' });
    await client.getOrCreateExperiment('genai-one');
    expect((await client.getExperimentByName('genai-one'))?.tags['mlflow.experimentKind']).toBe(
      'genai_development',
    );
    expect(client.runUrl('7', 'abc')).toBe(`${client.config.trackingUri}/#/experiments/7/runs/abc`);
  });

  it('creates, updates, gets and searches runs', async () => {
    const info = await newRun('searchable', { team: 'vision', 'mlflow.user': 'ann' });
    expect(info.status).toBe('RUNNING');
    expect(info.runName).toBe('searchable');
    const ended = await client.setTerminated(info.runId, 'FINISHED', info.startTime + 1234);
    expect(ended.status).toBe('FINISHED');
    const run = await client.getRun(info.runId);
    expect(run.info.status).toBe('FINISHED');
    expect(run.info.endTime).toBe(info.startTime + 1234);
    expect(run.data.tags).toMatchObject({ team: 'vision', 'mlflow.runName': 'searchable' });
    const found = await client.searchRuns({
      experimentIds: [info.experimentId],
      filter: "tags.team = 'vision'",
    });
    expect(found.runs.map((r) => r.info.runId)).toEqual([info.runId]);
  });

  it('raises a request error that says what was rejected', async () => {
    const run = await newRun('conflict');
    await client.logParam(run.runId, 'lr', 0.001);
    const err = await client.logParam(run.runId, 'lr', 0.01).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowRequestError);
    expect((err as MlflowRequestError).status).toBe(400);
    expect((err as MlflowRequestError).errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect((err as Error).message).toMatch(/log-batch.*lr/s);
    const missing = await client.getRun('0'.repeat(32)).catch((e: unknown) => e);
    expect((missing as MlflowRequestError).errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
  });

  it('gives up on an unreachable server after its retries', async () => {
    const port = await freePort();
    const offline = new MlflowClient({
      trackingUri: `http://127.0.0.1:${port}`,
      retry: { maxRetries: 2, backoffMs: 10, jitterMs: 0 },
    });
    const err = await offline.getExperimentByName('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowUnavailableError);
    expect((err as MlflowUnavailableError).attempts).toBe(3);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(await offline.health()).toBe(false);
    expect(await client.health()).toBe(true);
  });
});

describe('log-batch', () => {
  it('splits within the server limits and loses nothing', async () => {
    const run = await newRun('big-batch');
    const metrics = Array.from({ length: 2500 }, (_, i) => ({
      key: `m${i % 5}`,
      value: i / 7,
      step: Math.floor(i / 5),
      timestamp: 1_700_000_000_000 + i,
    }));
    const params = Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${i}`, i]));
    const tags = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`t${i}`, `v${i}`]));

    const parts = splitBatch(normalizeBatch({ metrics, params, tags }));
    for (const part of parts) {
      expect(part.metrics.length).toBeLessThanOrEqual(MLFLOW_LIMITS.metricsPerBatch);
      expect(part.params.length).toBeLessThanOrEqual(MLFLOW_LIMITS.paramsPerBatch);
      expect(part.tags.length).toBeLessThanOrEqual(MLFLOW_LIMITS.tagsPerBatch);
      expect(part.metrics.length + part.params.length + part.tags.length).toBeLessThanOrEqual(
        MLFLOW_LIMITS.entitiesPerBatch,
      );
    }
    expect(parts.length).toBeGreaterThanOrEqual(4);

    await client.logBatch(run.runId, { metrics, params, tags });
    const back = await client.getRun(run.runId);
    expect(Object.keys(back.data.params)).toHaveLength(250);
    expect(back.data.params.p249).toBe('249');
    expect(back.data.tags.t149).toBe('v149');
    for (let k = 0; k < 5; k++) {
      const history = await client.getMetricHistory(run.runId, `m${k}`);
      const expected = metrics.filter((m) => m.key === `m${k}`);
      expect(history).toHaveLength(500);
      expect([...history].sort((a, b) => a.step - b.step)).toEqual(expected);
    }
    // Retrying the same batch adds nothing (same timestamps: duplicates are skipped).
    await client.logBatch(run.runId, { metrics: metrics.slice(0, 10), params, tags });
    expect(await client.getMetricHistory(run.runId, 'm0')).toHaveLength(500);
  });

  it('sends NaN and ±Infinity as MLflow spells them', async () => {
    const run = await newRun('non-finite');
    await client.logBatch(run.runId, {
      metrics: [
        { key: 'x', value: NaN, step: 0 },
        { key: 'x', value: Infinity, step: 1 },
        { key: 'x', value: -Infinity, step: 2 },
        { key: 'x', value: 0.5, step: 3 },
      ],
    });
    const history = (await client.getMetricHistory(run.runId, 'x')).sort((a, b) => a.step - b.step);
    expect(history.map((m) => m.step)).toEqual([0, 1, 2, 3]);
    expect(history[0].value).toBeNaN();
    // The SQL store keeps ±Infinity as ±Number.MAX_VALUE.
    expect(Math.abs(history[1].value)).toBeGreaterThanOrEqual(Number.MAX_VALUE);
    expect(history[1].value).toBeGreaterThan(0);
    expect(history[2].value).toBeLessThan(0);
    expect(history[3].value).toBe(0.5);
  });

  it('sends a value over the limit as an artifact, with a tag saying so', async () => {
    const run = await newRun('oversized');
    const longParam = 'p'.repeat(MLFLOW_LIMITS.paramValueLength + 1000);
    const longTag = 't'.repeat(MLFLOW_LIMITS.tagValueLength + 1) + 'END';
    await client.logBatch(run.runId, {
      params: { architecture: longParam },
      tags: { summary: longTag },
    });
    const back = await client.getRun(run.runId);
    const param = back.data.params.architecture;
    expect(param.length).toBeLessThanOrEqual(MLFLOW_LIMITS.paramValueLength);
    expect(param).toMatch(/full value in artifact oversized\/params\/architecture\.txt\]$/);
    expect(back.data.tags[`${OVERSIZED_TAG_PREFIX}.param.architecture`]).toBe(
      'oversized/params/architecture.txt',
    );
    expect(back.data.tags[`${OVERSIZED_TAG_PREFIX}.tag.summary`]).toBe(
      'oversized/tags/summary.txt',
    );
    const full = await client.downloadArtifact(run.runId, 'oversized/params/architecture.txt');
    expect(Buffer.from(full).toString('utf8')).toBe(longParam);
    const fullTag = await client.downloadArtifact(run.runId, 'oversized/tags/summary.txt');
    expect(Buffer.from(fullTag).toString('utf8')).toBe(longTag);
  });
});

describe('artifacts and inputs', () => {
  it('uploads JSON, CSV, HTML and binary files through the artifact proxy', async () => {
    const run = await newRun('artifacts');
    const files: Record<string, string | Uint8Array> = {
      'report/a.json': JSON.stringify({ epoch: 1, ψ: [0.1, -0.2] }),
      'report/a.csv': 'epoch,parameter\n1,conv2d_1/kernel\n',
      'report/a.html': '<html><body>ψ</body></html>',
      'model/weights.bin': new Uint8Array(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256)),
      'with space/odd name:1.txt': 'ok',
    };
    for (const [p, data] of Object.entries(files)) await client.logArtifact(run.runId, p, data);
    for (const [p, data] of Object.entries(files)) {
      const bytes = Buffer.from(await client.downloadArtifact(run.runId, p));
      expect(bytes.equals(Buffer.from(typeof data === 'string' ? Buffer.from(data) : data))).toBe(
        true,
      );
    }
    const listing = await client.listArtifacts(run.runId, 'report');
    expect(listing.map((f) => f.path).sort()).toEqual([
      'report/a.csv',
      'report/a.html',
      'report/a.json',
    ]);
    await expect(client.logArtifact(run.runId, '../escape.txt', 'x')).rejects.toThrow(
      /artifact path/,
    );
  });

  it('records dataset inputs', async () => {
    const run = await newRun('inputs');
    await client.logInputs(run.runId, [
      {
        dataset: {
          name: 'mnist-train',
          digest: 'abc123',
          sourceType: 'local',
          source: JSON.stringify({ uri: 'file:///data/mnist' }),
          profile: JSON.stringify({ num_rows: 2000 }),
        },
        tags: { 'mlflow.data.context': 'train' },
      },
    ]);
    const back = await client.getRun(run.runId);
    expect(back.inputs).toEqual([
      {
        tags: { 'mlflow.data.context': 'train' },
        dataset: {
          name: 'mnist-train',
          digest: 'abc123',
          sourceType: 'local',
          source: '{"uri":"file:///data/mnist"}',
          profile: '{"num_rows":2000}',
          schema: undefined,
        },
      },
    ]);
    await expect(
      client.logInputs(run.runId, [
        { dataset: { name: 'x', digest: 'd'.repeat(37), sourceType: 'local', source: '{}' } },
      ]),
    ).rejects.toThrow(/digest.*at most 36/);
  });
});

describe('MlflowRun', () => {
  it('queues, flushes in order and ends the run', async () => {
    const run = await MlflowRun.start(client, {
      experimentName: 'run-tests',
      runName: 'queued',
      tags: { kind: 'unit' },
      params: { batch_size: 32 },
      localDir: path.join(workDir, 'queued'),
    });
    for (let step = 0; step < 3; step++)
      run.logMetrics({ loss: 1 / (step + 1), acc: step / 3 }, step);
    run.logParams({ epochs: 3 });
    run.logArtifact('notes.txt', 'hello');
    expect(run.pending).toBe(8);
    const flushed = await run.flush();
    expect(flushed).toMatchObject({ sent: 8, pending: 0, offline: false, errors: [] });
    const ended = await run.end('FINISHED');
    expect(ended.errors).toEqual([]);
    expect(() => run.logMetric('late', 1)).toThrow(/has ended/);

    const back = await client.getRun(run.runId);
    expect(back.info.status).toBe('FINISHED');
    expect(back.data.params).toEqual({ batch_size: '32', epochs: '3' });
    expect(back.data.tags.kind).toBe('unit');
    const loss = await client.getMetricHistory(run.runId, 'loss');
    expect(loss.map((m) => [m.step, m.value])).toEqual([
      [0, 1],
      [1, 0.5],
      [2, 1 / 3],
    ]);
    expect(Buffer.from(await client.downloadArtifact(run.runId, 'notes.txt')).toString()).toBe(
      'hello',
    );
  });

  it('reports what the server refused and still delivers the rest', async () => {
    const run = await MlflowRun.start(client, {
      experimentName: 'run-tests',
      params: { lr: 0.001 },
      localDir: path.join(workDir, 'refused'),
    });
    run.logMetric('a', 1, 0);
    run.logParams({ lr: 0.1 });
    run.logMetric('a', 2, 1);
    const result = await run.flush();
    expect(result.pending).toBe(0);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toBeInstanceOf(MlflowRequestError);
    expect(result.errors[0].message).toMatch(/param 'lr' was refused/);
    const history = await client.getMetricHistory(run.runId, 'a');
    expect(history.map((m) => m.value)).toEqual([1, 2]);
    await run.end();
  });

  it('takes up a spool left behind and sends it', async () => {
    const exp = await client.getOrCreateExperiment('run-tests');
    const info = await client.createRun({ experimentId: exp.experimentId, runName: 'crashed' });
    const spool = new Spool(path.join(workDir, 'crashed'));
    spool.open({
      localId: 'local-' + '0'.repeat(32),
      runId: info.runId,
      experimentId: info.experimentId,
      artifactUri: info.artifactUri,
      trackingUri: server.url,
    });
    spool.append([
      { kind: 'metric', key: 'loss', value: 0.5, step: 0, timestamp: 1_000 },
      { kind: 'metric', key: 'loss', value: NaN, step: 1, timestamp: 2_000 },
      { kind: 'artifact', path: 'left/behind.txt', data: new Uint8Array(Buffer.from('kept')) },
      { kind: 'end', status: 'KILLED', endTime: 3_000 },
    ]);
    // A line cut short by the crash is ignored.
    fs.appendFileSync(spool.path, '{"kind":"metr');

    await expect(
      MlflowRun.start(client, { experimentName: 'run-tests', localDir: spool.dir }),
    ).rejects.toThrow(/holds the spool of an earlier run/);
    const resumed = MlflowRun.resume(client, spool.path);
    expect(resumed.pending).toBe(4);
    expect(resumed.ended).toBe(true);
    const result = await resumed.flush({ force: true, timeoutMs: 30_000 });
    expect(result).toMatchObject({ sent: 4, pending: 0, errors: [] });
    expect(fs.existsSync(spool.path)).toBe(false);
    const history = await client.getMetricHistory(info.runId, 'loss');
    expect(history.map((m) => m.step)).toEqual([0, 1]);
    expect(history[1].value).toBeNaN();
    const back = await client.getRun(info.runId);
    expect(back.info).toMatchObject({ status: 'KILLED', endTime: 3_000 });
    const bytes = await client.downloadArtifact(info.runId, 'left/behind.txt');
    expect(Buffer.from(bytes).toString()).toBe('kept');
  });

  // Last in this file: it stops and restarts the shared server.
  it('spools while the server is down and delivers everything, in order, when it is back', async () => {
    const localDir = path.join(workDir, 'outage');
    const run = await MlflowRun.start(client, {
      experimentName: 'run-tests',
      runName: 'outage',
      localDir,
      reconnectMs: 200,
      maxReconnectMs: 1000,
    });
    run.logMetrics({ loss: 0.9 }, 0);
    expect((await run.flush()).sent).toBe(1);

    await server.stop();
    run.logMetrics({ loss: 0.8 }, 1);
    run.logArtifact('during-outage.json', '{"ok":true}');
    const down = await run.flush();
    expect(down.offline).toBe(true);
    expect(down.pending).toBe(2);
    expect(down.spoolPath).toBe(path.join(localDir, 'mlflow-spool.jsonl'));
    run.logMetrics({ loss: 0.7 }, 2);
    const spooled = fs.readFileSync(run.spoolPath, 'utf8').trim().split('\n');
    expect(spooled).toHaveLength(4); // header + 3 operations
    expect(JSON.parse(spooled[3])).toMatchObject({ kind: 'metric', key: 'loss', step: 2 });

    // What another process would find after a crash now.
    const { operations } = Spool.read(run.spoolPath);
    expect(operations.map((op) => op.kind)).toEqual(['metric', 'artifact', 'metric']);

    await server.restart();
    const ended = await run.end('FINISHED', { timeoutMs: 30_000 });
    expect(ended).toMatchObject({ pending: 0, offline: false, errors: [] });
    expect(fs.existsSync(path.join(localDir, 'mlflow-spool.jsonl'))).toBe(false);

    const history = await client.getMetricHistory(run.runId, 'loss');
    expect(history.map((m) => [m.step, m.value])).toEqual([
      [0, 0.9],
      [1, 0.8],
      [2, 0.7],
    ]);
    const artifact = await client.downloadArtifact(run.runId, 'during-outage.json');
    expect(JSON.parse(Buffer.from(artifact).toString())).toEqual({ ok: true });
    expect((await client.getRun(run.runId)).info.status).toBe('FINISHED');
  });
});
