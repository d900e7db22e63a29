/**
 * A shard's partial survives an MLflow outage (issue 21), against a real server that is stopped
 * and started again: the shard records the pending upload beside its partial, says so, retries
 * with growing pauses, and sends it when the server is back; a shard that gives up first
 * (--mlflow-wait) fails (exit 1) with a message naming the folder, keeps the record, and
 * `shards upload <folder>` sends it later. What arrives is the partial on disk, value for value.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main, type CliIo } from '../cli/main';
import { MlflowClient } from '../src/mlflow';
import { PENDING_UPLOAD_FILE, SHARD_KEY_TAG } from '../src/experiment/shard-tracking';
import { shardKey } from '../src/experiment/fingerprint';
import type { ShardPartial } from '../src/analysis/shards';
import { useMlflowServer } from './support/mlflow-server';
import { captureCli } from './support/cli-io';

const mlflow = useMlflowServer();
const ANALYSIS = ['--data', 'mnist', '--examples', '20', '--epsilon', '0.1', '--steps', '3'];
let dir: string;

/** A tiny dense model on 28×28 digits (untrained: the upload, not the analysis, is tested). */
async function saveModel(): Promise<string> {
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [28, 28, 1] }),
      tf.layers.dense({
        units: 10,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
        name: 'out',
      }),
    ],
  });
  const target = path.join(dir, 'model');
  await model.save(`file://${target}`);
  model.dispose();
  return path.join(target, 'model.json');
}

async function waitFor(cond: () => boolean, what: string, ms = 120_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shards-outage-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('a shard keeps its partial through an outage and sends it when MLflow is back; shards upload sends one that gave up', async () => {
  const model = await saveModel();
  const out = path.join(dir, 'shards');
  const shard = (i: number, wait: string, io: CliIo) =>
    main(
      ['analyze', model, ...ANALYSIS, '--shard', `${i}/2`, '--mlflow-wait', wait, '--out', out],
      io,
    );
  const folder = (i: number) => path.join(out, `model-shard-${i}-of-2`);
  await mlflow().stop();

  // Shard 0 gives up at once: exit 1, the record stays, the message says how to send it.
  const gaveUp = captureCli();
  const code = await shard(0, '0', gaveUp.io);
  if (code !== 1) throw new Error(gaveUp.err.join('\n'));
  const said = gaveUp.err.join('\n');
  expect(said).toContain(`MLflow unreachable at ${mlflow().url}`);
  expect(said).toContain(`'tfjs-antifragile shards upload ${folder(0)}'`);
  expect(fs.existsSync(path.join(folder(0), PENDING_UPLOAD_FILE))).toBe(true);
  expect(fs.existsSync(path.join(folder(0), 'shard-0-of-2.json'))).toBe(true);

  // Shard 1 waits: the server comes back while it retries, and it finishes.
  const waited = captureCli();
  const running = shard(1, '300', waited.io);
  await waitFor(
    () => waited.err.some((l) => l.startsWith('MLflow unreachable')),
    'the outage message',
  );
  await mlflow().restart();
  expect(await running).toBe(0);
  expect(waited.err.join('\n')).toContain('MLflow: back; shard-1-of-2.json sent to run');
  expect(fs.existsSync(path.join(folder(1), PENDING_UPLOAD_FILE))).toBe(false);

  // shards upload sends shard 0's; a folder with nothing pending is said so.
  const upload = captureCli();
  expect(await main(['shards', 'upload', folder(0), folder(1)], upload.io)).toBe(0);
  expect(upload.out).toContain(`${folder(1)}: nothing pending (no ${PENDING_UPLOAD_FILE})`);
  expect(upload.out).toContain('shards upload: 1 of 1 pending partial(s) sent');
  expect(fs.existsSync(path.join(folder(0), PENDING_UPLOAD_FILE))).toBe(false);

  // Each partial is on its analysis' parent run (found by its key), as it is on disk. (The two
  // shards load the model in one process, where tfjs renames its weights: two analyses here.)
  const client = new MlflowClient({ trackingUri: mlflow().url });
  const experiment = await client.getExperimentByName('tfjs-antifragile');
  const { runs } = await client.searchRuns({ experimentIds: [experiment!.experimentId] });
  for (const i of [0, 1]) {
    const name = `shard-${i}-of-2.json`;
    const text = fs.readFileSync(path.join(folder(i), name), 'utf8');
    const partial = JSON.parse(text) as ShardPartial;
    const key = shardKey(partial.fingerprint, 2);
    const parents = runs.filter((r) => r.data.tags[SHARD_KEY_TAG] === key);
    expect(parents).toHaveLength(1);
    const bytes = await client.downloadArtifact(parents[0].info.runId, `shards/${name}`);
    expect(JSON.parse(Buffer.from(bytes).toString('utf8'))).toEqual(partial);
  }
}, 400_000);
