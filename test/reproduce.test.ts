/**
 * `npm run reproduce` end to end on a tiny recipe, against a real MLflow server: one run per
 * seed, the compare page, results.json/.md with mean ± std, and in MLflow one parent run whose
 * children are the runs, each with one child run per arm.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Writable } from 'stream';
import { reproduce } from '../cli/reproduce';
import { MlflowClient, type Run } from '../src/mlflow';
import type { Comparison } from '../src/experiment';
import { useMlflowServer } from './support/mlflow-server';
import { tempRuns, writeTinySystem } from './recipes-helpers';

const mlflow = useMlflowServer();

const quiet = new Writable({ write: (_c, _e, done) => done() });

it('runs each seed with the runner as a library, compares, summarises, and nests the MLflow runs', async () => {
  const dir = tempRuns('reproduce');
  const recipe = writeTinySystem(dir, 'tiny-system', {
    dataset: { name: 'mnist', trainSize: 150, validationSize: 40, testSize: 60 },
    tracking: { mlflow: { experimentName: 'not-this-one' } },
  });
  const lines: string[] = [];
  const result = await reproduce({
    recipes: [recipe],
    seeds: [0, 1],
    overrides: ['analysis.steps=4'],
    outDir: dir,
    experiment: 'reproduce-test',
    io: { out: () => undefined, err: (t) => lines.push(t), progressStream: quiet, tty: false },
    log: (l) => lines.push(l),
  });
  expect(result.status).toBe('finished');
  expect(result.runs).toHaveLength(2);

  // Each run: the seed went into training, data and retraining; the override applied.
  const comparisons: Comparison[] = [];
  for (const [i, runDir] of result.runs.entries()) {
    const r = JSON.parse(fs.readFileSync(path.join(runDir, 'recipe.json'), 'utf8'));
    expect([r.training.seed, r.dataset.seed, r.retraining.seeds]).toEqual([i, i, [i]]);
    expect(r.analysis.steps).toBe(4);
    comparisons.push(JSON.parse(fs.readFileSync(path.join(runDir, 'comparison.json'), 'utf8')));
  }
  expect(fs.existsSync(path.join(result.dir, 'compare.html'))).toBe(true);

  // The summary is the mean and sample std of the runs' own comparisons.
  const fgsm = comparisons.map((c) => c.seeds[0].selective.fgsm);
  const [summary] = result.summaries;
  expect(summary.system).toBe('tiny-system');
  expect(summary.selective.fgsm.n).toBe(2);
  expect(summary.selective.fgsm.mean).toBeCloseTo((fgsm[0] + fgsm[1]) / 2, 12);
  expect(summary.selective.fgsm.std).toBeCloseTo(Math.abs(fgsm[0] - fgsm[1]) / Math.SQRT2, 12);
  const results = JSON.parse(fs.readFileSync(path.join(result.dir, 'results.json'), 'utf8'));
  expect(results.status).toBe('finished');
  expect(results.summaries[0].normal.clean.mean).toBeCloseTo(summary.normal.clean.mean, 12);
  const md = fs.readFileSync(path.join(result.dir, 'results.md'), 'utf8');
  expect(md).toMatch(/\| tiny-system \| normal \| 2 \| [\d.]+ ± [\d.]+ \|/);
  expect(md).toMatch(
    /\| tiny-system \| selective − normal \(points, 95% CI\) \| 2 \| [+-][\d.]+ \(95% CI \[[+-][\d.]+, [+-][\d.]+\], n = 2\)/,
  );
  expect(md).toMatch(/^tiny-system: selective − normal: FGSM .*at n = 2\.$/m);

  // MLflow: parent → one run per seed → one run per arm.
  const client = new MlflowClient({ trackingUri: mlflow().url });
  const parent = await client.getRun(result.mlflowRunId as string);
  expect(parent.info.status).toBe('FINISHED');
  expect(parent.data.metrics['tiny-system/selective_fgsm_mean'].value).toBeCloseTo(
    summary.selective.fgsm.mean,
    6,
  );
  const experiment = await client.getExperimentByName('reproduce-test');
  const { runs } = await client.searchRuns({ experimentIds: [experiment!.experimentId] });
  const childrenOf = (id: string) => runs.filter((r) => r.data.tags['mlflow.parentRunId'] === id);
  const seedRuns = childrenOf(parent.info.runId);
  expect(seedRuns.map((r) => r.info.runName).sort()).toEqual(
    result.runs.map((d) => path.basename(d)).sort(),
  );
  for (const seedRun of seedRuns) {
    expect(seedRun.info.status).toBe('FINISHED');
    const runDir = result.runs.find((d) => path.basename(d) === seedRun.info.runName) as string;
    const comparison = comparisons[result.runs.indexOf(runDir)];
    const seed = comparison.seeds[0].seed;
    const arms = childrenOf(seedRun.info.runId);
    const byArm = (arm: string) => arms.find((r: Run) => r.data.params.arm === arm) as Run;
    expect(arms).toHaveLength(2);
    for (const arm of ['normal', 'selective'] as const) {
      const run = byArm(arm);
      expect(run.info.status).toBe('FINISHED');
      expect(run.info.runName).toBe(`${seedRun.info.runName}/${arm}-s${seed}`);
      expect(run.data.params.seed).toBe(String(seed));
      expect(run.data.metrics.test_fgsm_acc.value).toBeCloseTo(comparison.seeds[0][arm].fgsm, 6);
      expect(run.data.metrics.test_pgd_acc.value).toBeCloseTo(comparison.seeds[0][arm].pgd!, 6);
    }
    expect(seedRun.data.metrics['comparison/gain_fgsm'].value).toBeCloseTo(comparison.gain.fgsm, 6);
    // The selective arm carries its own analyses.
    const files = (await client.listArtifacts(byArm('selective').info.runId, 'analysis')).map(
      (f) => f.path,
    );
    expect(files).toContain('analysis/start.json');
  }
}, 300_000);

it('Ctrl-C stops the reproduction, keeps what finished and marks the parent run KILLED', async () => {
  const dir = tempRuns('reproduce-stop');
  const recipe = writeTinySystem(dir, 'tiny-stop');
  let sent = false;
  const result = await reproduce({
    recipes: [recipe],
    seeds: [0, 1, 2],
    outDir: dir,
    experiment: 'reproduce-stop',
    io: { out: () => undefined, err: () => undefined, progressStream: quiet, tty: false },
    log: (line) => {
      // Between runs: the first run has not started yet, so only the driver's handler sees it.
      if (!sent && line.includes('seed 0:')) {
        sent = true;
        process.emit('SIGINT');
      }
    },
  });
  expect(result.status).toBe('killed');
  expect(result.runs).toHaveLength(1);
  expect(result.summaries[0].normal.fgsm.n).toBe(1);
  const results = JSON.parse(fs.readFileSync(path.join(result.dir, 'results.json'), 'utf8'));
  expect(results.status).toBe('killed');
  expect(fs.readFileSync(path.join(result.dir, 'results.md'), 'utf8')).toMatch(
    /^# Normal vs selective retraining \(killed\)/,
  );
  const client = new MlflowClient({ trackingUri: mlflow().url });
  expect((await client.getRun(result.mlflowRunId as string)).info.status).toBe('KILLED');
}, 300_000);

it('Ctrl-C during a run stops that run after its current epoch, and the reproduction with it', async () => {
  const dir = tempRuns('reproduce-stop-run');
  const recipe = writeTinySystem(dir, 'tiny-stop-run');
  let sent = false;
  // The run's progress lines: the end of the training epoch is where Ctrl-C is pressed.
  const progressStream = new Writable({
    write: (chunk, _e, done) => {
      if (!sent && /^train epoch 1\/1:/.test(String(chunk))) {
        sent = true;
        process.emit('SIGINT');
      }
      done();
    },
  });
  const result = await reproduce({
    recipes: [recipe],
    seeds: [0, 1],
    outDir: dir,
    experiment: 'reproduce-stop-run',
    io: { out: () => undefined, err: () => undefined, progressStream, tty: false },
    log: () => undefined,
  });
  expect(sent).toBe(true);
  expect(result.status).toBe('killed');
  expect(result.runs).toHaveLength(1);
  const info = JSON.parse(fs.readFileSync(path.join(result.runs[0], 'run.json'), 'utf8'));
  expect(info.status).toBe('killed');
  expect(info.completedPhases).toEqual(['train']);
  expect(result.summaries).toEqual([]);
  const client = new MlflowClient({ trackingUri: mlflow().url });
  expect((await client.getRun(result.mlflowRunId as string)).info.status).toBe('KILLED');
}, 300_000);
