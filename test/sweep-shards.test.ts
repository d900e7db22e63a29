/**
 * Sharded sweeps (issue 21): `reproduce` over (system × seed) as 2 shards, merged with
 * `tfjs-antifragile merge`, gives the results.json of the unsharded run (apart from timings
 * and paths) and a compare page; the shards' runs hang under one MLflow parent run, which the
 * merge ends with the summary; missing, duplicated and foreign shards are refused (exit 2,
 * nothing written); the round-robin split covers every run once.
 */
import * as fs from 'fs';
import * as path from 'path';
import { reproduce, reproduceMain } from '../cli/reproduce';
import { mergeCommand } from '../cli/shards';
import { sweepPlan, sweepShardWork, SWEEP_SHARD_FILE } from '../src/experiment/sweep-shards';
import { MlflowClient } from '../src/mlflow';
import { SHARD_KEY_TAG } from '../src/experiment/shard-tracking';
import { useMlflowServer } from './support/mlflow-server';
import { tempRuns, writeTinySystem } from './recipes-helpers';
import { captureCli } from './support/cli-io';

const mlflow = useMlflowServer();
const EXPERIMENT = 'sweep-shards-test';

/** results.json without what legitimately differs: timings, paths and the command line. */
function comparable(dir: string) {
  const r = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
  delete r.minutes;
  delete r.runs;
  delete r.command;
  for (const e of r.entries) delete e.seconds;
  for (const s of r.summaries) delete s.seconds;
  return r;
}

it('round-robin: every (system, seed) run in exactly one shard, system-major order', () => {
  const plan = sweepPlan(['a.json', 'b.json'], [0, 1, 2]);
  expect(plan.map((r) => `${r.recipe}:${r.seed}`)).toEqual([
    'a.json:0',
    'a.json:1',
    'a.json:2',
    'b.json:0',
    'b.json:1',
    'b.json:2',
  ]);
  for (const n of [1, 2, 4, 7]) {
    const all = Array.from({ length: n }, (_, index) => sweepShardWork(plan, { index, count: n }));
    expect(all.flat().sort((a, b) => a - b)).toEqual(plan.map((_, k) => k));
    expect(
      Math.max(...all.map((w) => w.length)) - Math.min(...all.map((w) => w.length)),
    ).toBeLessThanOrEqual(1);
  }
});

it('--shards without JOB_COMPLETION_INDEX, or with --shard, is a usage error (exit 2)', async () => {
  const saved = process.env.JOB_COMPLETION_INDEX;
  delete process.env.JOB_COMPLETION_INDEX;
  const spy = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    expect(await reproduceMain(['--shards', '2'])).toBe(2);
    expect(spy.mock.calls[0][0]).toContain('JOB_COMPLETION_INDEX');
    expect(await reproduceMain(['--shard', '0/2', '--shards', '2'])).toBe(2);
    expect(await reproduceMain(['--shard', '2/2'])).toBe(2);
    expect(spy.mock.calls[2][0]).toContain('index 2 is outside 0…1');
  } finally {
    spy.mockRestore();
    if (saved !== undefined) process.env.JOB_COMPLETION_INDEX = saved;
  }
});

it('2 sweep shards merge into the unsharded results; one MLflow parent holds the shards’ runs', async () => {
  const dir = tempRuns('sweep-shards');
  const recipe = writeTinySystem(dir, 'tiny-sweep');
  const common = { recipes: [recipe], seeds: [0, 1], experiment: EXPERIMENT, log: () => undefined };
  const whole = await reproduce({
    ...common,
    outDir: path.join(dir, 'whole'),
    io: captureCli().io,
  });
  expect(whole.status).toBe('finished');

  const shardsOut = path.join(dir, 'shards');
  const folders: string[] = [];
  for (const index of [1, 0]) {
    const r = await reproduce({
      ...common,
      outDir: shardsOut,
      shard: { index, count: 2 },
      io: captureCli().io,
    });
    expect(r.runs).toHaveLength(1);
    expect(path.basename(r.dir)).toBe(`reproduce-shard-${index}-of-2`);
    expect(fs.existsSync(path.join(r.dir, SWEEP_SHARD_FILE))).toBe(true);
    folders.push(r.dir);
  }

  // Refused: a missing shard, a duplicated one; nothing written.
  const refusedOut = path.join(dir, 'refused');
  const missing = captureCli();
  expect(await mergeCommand([folders[0], '--out', refusedOut], missing.io)).toBe(2);
  expect(missing.err.join('\n')).toContain('missing shard(s) 0/2 of 2');
  const dup = captureCli();
  expect(await mergeCommand([folders[0], folders[0], '--out', refusedOut], dup.io)).toBe(2);
  expect(dup.err.join('\n')).toMatch(/shard 1\/2 \(.*reproduce-shard-1-of-2\) is duplicated/);
  expect(fs.existsSync(refusedOut)).toBe(false);

  const merged = captureCli();
  const mergedOut = path.join(dir, 'merged');
  expect(await mergeCommand([...folders, '--out', mergedOut], merged.io)).toBe(0);
  const [mergedDir] = fs.readdirSync(mergedOut).map((d) => path.join(mergedOut, d));
  expect(comparable(mergedDir)).toEqual(comparable(whole.dir));
  const runs = JSON.parse(fs.readFileSync(path.join(mergedDir, 'results.json'), 'utf8')).runs;
  expect(runs.map((r: string) => path.basename(path.dirname(r)))).toEqual([
    'reproduce-shard-0-of-2',
    'reproduce-shard-1-of-2',
  ]);
  expect(fs.readFileSync(path.join(mergedDir, 'results.md'), 'utf8')).toContain(
    '| tiny-sweep | normal | 2 |',
  );
  expect(fs.existsSync(path.join(mergedDir, 'compare.html'))).toBe(true);

  // MLflow: one parent (by its tag) with both shards' runs as children, ended by the merge.
  const client = new MlflowClient({ trackingUri: mlflow().url });
  const experiment = await client.getExperimentByName(EXPERIMENT);
  const { runs: all } = await client.searchRuns({ experimentIds: [experiment!.experimentId] });
  const parents = all.filter((r) => r.data.tags[SHARD_KEY_TAG] !== undefined);
  expect(parents).toHaveLength(1);
  const parent = parents[0];
  expect(parent.info.status).toBe('FINISHED');
  const children = all.filter((r) => r.data.tags['mlflow.parentRunId'] === parent.info.runId);
  expect(children.map((r) => r.info.runName).sort()).toEqual(
    folders.map((f) => fs.readdirSync(f).find((d) => d.startsWith('tiny-sweep'))).sort(),
  );
  const summary = JSON.parse(fs.readFileSync(path.join(mergedDir, 'results.json'), 'utf8'))
    .summaries[0];
  expect(parent.data.metrics['tiny-sweep/selective_fgsm_mean'].value).toBeCloseTo(
    summary.selective.fgsm.mean,
    6,
  );
  const files = (await client.listArtifacts(parent.info.runId)).map((f) => f.path).sort();
  expect(files).toEqual(['compare.html', 'results.json', 'results.md']);
}, 600_000);
