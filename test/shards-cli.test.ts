/**
 * Sharded `analyze` from the command line (issue 21): shard processes numbered by
 * JOB_COMPLETION_INDEX meet at a real MLflow server, one is SIGKILLed mid-write and rerun, and
 * `merge --mlflow-run` rebuilds the unsharded analysis.json byte for byte (but `seconds`); the
 * same through a shared folder without MLflow; a shard of another model is refused (exit 2,
 * nothing written).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../cli/main';
import { loadBuiltinMnist } from '../datasets/mnist-builtin';
import { MlflowClient } from '../src/mlflow';
import { SHARD_KEY_TAG } from '../src/experiment/shard-tracking';
import { REQUIRE_TYPESCRIPT, projectPath } from './support/child-script';
import { useMlflowServer } from './support/mlflow-server';
import { captureCli } from './support/cli-io';

let dir: string;
let fullJson: string;
const ANALYSIS = ['--data', 'mnist', '--examples', '30', '--epsilon', '0.1', '--steps', '3'];

/** A tiny CNN on 28×28 digits, trained a little, saved as a tfjs model.json under `name/`. */
async function saveModel(name: string, seed: number): Promise<string> {
  const { train } = loadBuiltinMnist({ trainSize: 200, testSize: 1, seed });
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 10 + s });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 4,
        kernelSize: 3,
        strides: 2,
        activation: 'relu',
        kernelInitializer: init(1),
        name: 'c1',
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({
        units: 10,
        activation: 'softmax',
        kernelInitializer: init(2),
        name: 'out',
      }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
  await model.fit(train.xs, train.ys, { epochs: 2, batchSize: 50, verbose: 0 });
  tf.dispose([train.xs, train.ys]);
  const target = path.join(dir, name);
  await model.save(`file://${target}`);
  model.dispose();
  return path.join(target, 'model.json');
}

/** The CLI in a child process; `killAt`: SIGKILL itself at that kill point. */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
  killAt?: string,
): Promise<{ code: number | null; signal: string | null; out: string }> {
  const source = `${REQUIRE_TYPESCRIPT}
const { setKillPointHook } = require(${projectPath('src/experiment/kill-points.ts')});
const killAt = ${JSON.stringify(killAt ?? null)};
if (killAt) setKillPointHook((p) => { if (p === killAt) process.kill(process.pid, 'SIGKILL'); });
require(${projectPath('cli/main.ts')}).main(${JSON.stringify(args)}).then((c) => { process.exitCode = c; });
`;
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(script, source);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, ...env, NODE_PATH: path.join(__dirname, '..', 'node_modules') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}

const withoutSeconds = (text: string) => text.replace(/"seconds": [^,\n]+/, '"seconds": 0');

function mergedJson(outDir: string): string {
  const [folder] = fs.readdirSync(outDir);
  return fs.readFileSync(path.join(outDir, folder, 'analysis.json'), 'utf8');
}

let modelA: string;
let modelB: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shards-cli-'));
  modelA = await saveModel('a', 1);
  modelB = await saveModel('b', 2);
  // Each run in a fresh process, as on a cluster: tfjs renames the weights of a model loaded
  // twice in one process (c1/kernel_1), which would change the report's names.
  const full = path.join(dir, 'full');
  const run = await cli(['analyze', modelA, ...ANALYSIS, '--out', full], {});
  expect(run).toMatchObject({ code: 0 });
  fullJson = mergedJson(full);
}, 180_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('through a shared folder, without MLflow', () => {
  it('2 shard processes merge into the unsharded analysis', async () => {
    const shared = path.join(dir, 'shared');
    const runs = await Promise.all(
      ['0/2', '1/2'].map((shard) =>
        cli(['analyze', modelA, ...ANALYSIS, '--shard', shard, '--out', shared], {
          MLFLOW_TRACKING_URI: '',
        }),
      ),
    );
    expect(runs.map((r) => [r.code, r.out.includes('MLflow')])).toEqual([
      [0, false],
      [0, false],
    ]);
    const folders = fs.readdirSync(shared).sort();
    expect(folders).toEqual(['a-shard-0-of-2', 'a-shard-1-of-2']);
    const out = path.join(dir, 'merged-folder');
    const { io, err } = captureCli();
    expect(
      await main(['merge', ...folders.map((f) => path.join(shared, f)), '--out', out], io),
    ).toBe(0);
    expect(err).toEqual([]);
    expect(withoutSeconds(mergedJson(out))).toBe(withoutSeconds(fullJson));
    const [merged] = fs.readdirSync(out);
    expect(fs.readdirSync(path.join(out, merged)).sort()).toEqual([
      'analysis.json',
      'labels.csv',
      'report.html',
      'run.json',
    ]);
  });

  it('refuses a shard of another model: exit 2, nothing written, the shard named', async () => {
    const other = path.join(dir, 'other');
    const { io } = captureCli();
    expect(await main(['analyze', modelB, ...ANALYSIS, '--shard', '1/2', '--out', other], io)).toBe(
      0,
    );
    const out = path.join(dir, 'refused');
    const run = captureCli();
    const code = await main(
      [
        'merge',
        path.join(dir, 'shared', 'a-shard-0-of-2'),
        path.join(other, 'b-shard-1-of-2'),
        '--out',
        out,
      ],
      run.io,
    );
    expect(code).toBe(2);
    expect(run.err.join('\n')).toMatch(
      /merge: .*b-shard-1-of-2\/shard-1-of-2\.json is a shard of another analysis: its model differs/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses a missing shard and --shards without JOB_COMPLETION_INDEX (exit 2)', async () => {
    const run = captureCli();
    expect(
      await main(
        ['merge', path.join(dir, 'shared', 'a-shard-0-of-2'), '--out', path.join(dir, 'x')],
        run.io,
      ),
    ).toBe(2);
    expect(run.err.join('\n')).toContain('merge: shard 1/2 missing');
    const bad = captureCli();
    delete process.env.JOB_COMPLETION_INDEX;
    expect(
      await main(
        ['analyze', modelA, ...ANALYSIS, '--shards', '2', '--out', path.join(dir, 'x')],
        bad.io,
      ),
    ).toBe(2);
    expect(bad.err.join('\n')).toContain('takes the shard index from JOB_COMPLETION_INDEX');
    expect(fs.existsSync(path.join(dir, 'x'))).toBe(false);
  });
});

describe('through MLflow, as a Kubernetes Indexed Job', () => {
  const server = useMlflowServer();

  it('3 shard processes (JOB_COMPLETION_INDEX), one SIGKILLed and rerun, merge --mlflow-run = unsharded', async () => {
    const env = { MLFLOW_TRACKING_URI: server().url };
    const shardArgs = [
      'analyze',
      modelA,
      ...ANALYSIS,
      '--shards',
      '3',
      '--out',
      path.join(dir, 'pods'),
    ];
    // The three start together: they race to create the parent run.
    const runs = await Promise.all(
      [0, 1, 2].map((i) =>
        cli(
          shardArgs,
          { ...env, JOB_COMPLETION_INDEX: String(i) },
          i === 1 ? 'shard-1-of-3.json: temporary file written' : undefined,
        ),
      ),
    );
    expect(runs.map((r) => r.signal)).toEqual([null, 'SIGKILL', null]);
    expect(runs[0].code).toBe(0);
    const parent = (r: { out: string }) => /MLflow parent run: (\w+)/.exec(r.out)?.[1];
    const runId = parent(runs[0]);
    expect(runId).toBeDefined();
    expect(parent(runs[2])).toBe(runId);

    // Shard 1 died between writing its temporary file and renaming it: it is missing.
    const early = captureCli();
    const out = path.join(dir, 'merged-mlflow');
    expect(await main(['merge', '--mlflow-run', runId!, '--out', out], early.io)).toBe(2);
    expect(early.err.join('\n')).toContain('merge: shard 1/3 missing');
    expect(fs.existsSync(out)).toBe(false);

    // Kubernetes reruns the index (backoffLimitPerIndex).
    const rerun = await cli(shardArgs, { ...env, JOB_COMPLETION_INDEX: '1' });
    expect(rerun.code).toBe(0);
    expect(parent(rerun)).toBe(runId);
    const merged = captureCli();
    expect(await main(['merge', '--mlflow-run', runId!, '--out', out], merged.io)).toBe(0);
    expect(withoutSeconds(mergedJson(out))).toBe(withoutSeconds(fullJson));

    // One parent run is live for this analysis; any run that lost the race says so.
    const client = new MlflowClient();
    const uploaded = await client.downloadArtifact(runId!, 'merged/analysis.json');
    expect(Buffer.from(uploaded).toString('utf8')).toBe(mergedJson(out));
    const experiment = await client.getExperimentByName('tfjs-antifragile');
    const { runs: tagged } = await client.searchRuns({
      experimentIds: [experiment!.experimentId],
      filter: `tags.\`${SHARD_KEY_TAG}\` != ''`,
    });
    const losers = tagged.filter((r) => r.info.runId !== runId);
    for (const r of losers) expect(r.data.tags['tfjs_antifragile.duplicate_of']).toBe(runId);
  }, 400_000);
});
