/**
 * A recipe run tracked in a real MLflow server (test/support/mlflow-server.ts): Ctrl-C marks the
 * MLflow run KILLED, and the resumed run is a new MLflow run that carries the whole history.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Writable } from 'stream';
import { main } from '../cli/main';
import { MlflowClient } from '../src/mlflow';
import { useMlflowServer } from './support/mlflow-server';
import { tempRuns } from './recipes-helpers';

const mlflow = useMlflowServer();

it('Ctrl-C marks the MLflow run KILLED; --resume logs a new run with the whole history', async () => {
  const dir = tempRuns('cli-mlflow');
  const recipe = path.join(dir, 'tracked.json');
  fs.writeFileSync(
    recipe,
    JSON.stringify({
      name: 'tracked',
      model: { architecture: 'small_cnn' },
      dataset: { name: 'mnist', trainSize: 100, validationSize: 40, testSize: 40, seed: 0 },
      training: { batchSize: 50, epochs: 2 },
      analysis: { epsilon: 0.3, steps: 3, filters: ['lowpass'], examples: 40 },
      retraining: { enabled: true, epochs: 2, seeds: [0] },
      tracking: { mlflow: { experimentName: 'cli-test', tags: { suite: 'cli-mlflow' } } },
    }),
  );
  let sent = false;
  const lines: string[] = [];
  const io = (onLine?: (l: string) => void) => ({
    out: (t: string) => lines.push(t),
    err: (t: string) => lines.push(t),
    tty: false,
    progressStream: new Writable({
      write(chunk, _e, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) {
          lines.push(l);
          onLine?.(l);
        }
        done();
      },
    }),
  });
  const out = path.join(dir, 'runs');
  const code = await main(
    ['run', recipe, '--out', out],
    io((l) => {
      if (!sent && l.startsWith('normal-s0 epoch 1/2: 2/2 batches in')) {
        sent = true;
        process.emit('SIGINT');
      }
    }),
  );
  expect(code).toBe(130);
  const runDir = path.join(out, fs.readdirSync(out)[0]);
  const info = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  expect(info.mlflowRuns).toHaveLength(1);
  const client = new MlflowClient({ trackingUri: mlflow().url });
  const killed = await client.getRun(info.mlflowRuns[0]);
  expect(killed.info.status).toBe('KILLED');
  expect(killed.data.params['model.architecture']).toBe('small_cnn');
  expect(killed.data.tags.suite).toBe('cli-mlflow');
  expect(killed.info.runName).toBe(path.basename(runDir));
  // Stopped inside the normal branch: its child run is KILLED too.
  expect(Object.keys(info.mlflowChildRuns)).toEqual(['normal-s0']);
  const killedChild = await client.getRun(info.mlflowChildRuns['normal-s0']);
  expect(killedChild.info.status).toBe('KILLED');
  expect(killedChild.data.tags['mlflow.parentRunId']).toBe(info.mlflowRuns[0]);

  expect(await main(['run', '--resume', runDir], io())).toBe(0);
  const after = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  expect(after.mlflowRuns).toHaveLength(2);
  const resumed = await client.getRun(after.mlflowRuns[1]);
  expect(resumed.info.status).toBe('FINISHED');
  expect(resumed.data.tags['tfjs_antifragile.resumed_from']).toBe(info.mlflowRuns[0]);
  const history = await client.getMetricHistory(resumed.info.runId, 'train/test_acc');
  expect(history.map((m) => m.step).sort()).toEqual([1, 2]);
  // The resumed parent has both arms as children, the normal one with its whole history.
  expect(Object.keys(after.mlflowChildRuns).sort()).toEqual(['normal-s0', 'selective-s0']);
  for (const [phase, id] of Object.entries(after.mlflowChildRuns as Record<string, string>)) {
    const child = await client.getRun(id);
    expect(child.info.status).toBe('FINISHED');
    expect(child.data.tags['mlflow.parentRunId']).toBe(resumed.info.runId);
    expect(child.data.params.arm).toBe(phase.split('-')[0]);
    const steps = await client.getMetricHistory(id, 'test_fgsm_acc');
    expect(steps.map((m) => m.step).sort()).toEqual([1, 2]);
  }
  const comparison = JSON.parse(fs.readFileSync(path.join(runDir, 'comparison.json'), 'utf8'));
  expect(resumed.data.metrics['comparison/gain_fgsm'].value).toBeCloseTo(comparison.gain.fgsm, 6);
  const psi = Object.keys(resumed.data.metrics).filter((k) =>
    k.startsWith('train/psi_adversarial/lowpass/'),
  );
  expect(psi.length).toBe(4);
  const files = (await client.listArtifacts(resumed.info.runId)).map((f) => f.path);
  expect(files).toEqual(
    expect.arrayContaining(['report.html', 'metrics.csv', 'recipe.json', 'analysis']),
  );
}, 120_000);
