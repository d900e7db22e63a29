/**
 * What a recipe run leaves in MLflow, read back with MLflow's own Python client: the experiment
 * marked as classic model training, run descriptions, each arm's final model (loadable, with its
 * signature), the run folder's files on the parent, `epoch`/`seeds` as steps/params, the
 * experiment name's precedence and the printed UI link.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import * as tf from '@tensorflow/tfjs';
import { runRecipe, validateRecipe } from '../src/experiment';
import { EPOCH_CONVENTION } from '../src/experiment/epochs';
import { writeRunReport } from '../src/report';
import { createProgress } from '../src/experiment/progress';
import { recipeExperimentName } from '../src/experiment/tracking';
import { useMlflowServer } from './support/mlflow-server';
import { tempRuns, tinyRecipe } from './recipes-helpers';

const mlflow = useMlflowServer();
const PYTHON = path.join(__dirname, '..', '.venv', 'bin', 'python');

/** Experiment tags, runs (tags, params, metric keys, every artifact path) and downloaded models. */
const SCRIPT = `
import json, sys
from mlflow.tracking import MlflowClient
from mlflow.models import Model
client = MlflowClient(tracking_uri=sys.argv[1])
exp = client.get_experiment_by_name(sys.argv[2])
def walk(run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        out += walk(run_id, f.path) if f.is_dir else [f.path]
    return out
runs = []
for r in client.search_runs([exp.experiment_id]):
    files = walk(r.info.run_id)
    model = None
    if 'model/MLmodel' in files:
        local = client.download_artifacts(r.info.run_id, 'model', sys.argv[3])
        sig = Model.load(local).signature
        model = dict(dir=local, inputs=sig.inputs.to_dict(), outputs=sig.outputs.to_dict())
    steps = sorted(m.step for m in client.get_metric_history(r.info.run_id, 'test_acc'))
    runs.append(dict(runId=r.info.run_id, runName=r.info.run_name, tags=r.data.tags,
                     params=r.data.params, metrics=sorted(r.data.metrics), files=files, model=model,
                     steps=steps))
print(json.dumps(dict(experimentId=exp.experiment_id, tags=exp.tags, runs=runs)))
`;

interface Read {
  experimentId: string;
  tags: Record<string, string>;
  runs: {
    runId: string;
    runName: string;
    tags: Record<string, string>;
    params: Record<string, string>;
    metrics: string[];
    files: string[];
    model: null | { dir: string; inputs: unknown[]; outputs: unknown[] };
    /** Steps of `test_acc` (child runs). */
    steps: number[];
  }[];
}

function read(experiment: string): Read {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'tfa-models-'));
  const r = spawnSync(PYTHON, ['-c', SCRIPT, mlflow().url, experiment, dest], {
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`MLflow's Python client failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Read;
}

describe('MLflow records of a recipe run', () => {
  const saved = process.env.MLFLOW_EXPERIMENT_NAME;
  afterAll(() => {
    if (saved === undefined) delete process.env.MLFLOW_EXPERIMENT_NAME;
    else process.env.MLFLOW_EXPERIMENT_NAME = saved;
  });

  it('experiment name: the recipe value, else MLFLOW_EXPERIMENT_NAME, else tfjs-antifragile', () => {
    const plain = tinyRecipe({ tracking: { mlflow: { enabled: true } } });
    expect(plain.tracking.mlflow.experimentName).toBeUndefined();
    expect(recipeExperimentName(plain, {})).toBe('tfjs-antifragile');
    expect(recipeExperimentName(plain, { MLFLOW_EXPERIMENT_NAME: 'from-env' })).toBe('from-env');
    const named = tinyRecipe({ tracking: { mlflow: { experimentName: 'from-recipe' } } });
    expect(recipeExperimentName(named, { MLFLOW_EXPERIMENT_NAME: 'from-env' })).toBe('from-recipe');
  });

  it('logs each arm its model, the parent the run files, and marks the experiment', async () => {
    process.env.MLFLOW_EXPERIMENT_NAME = 'records-from-env';
    const recipe = validateRecipe(
      {
        ...tinyRecipe(),
        description: 'Tiny run for the MLflow records test.',
        training: { batchSize: 50, epochs: 1, seed: 3 },
        retraining: { enabled: true, epochs: 2, seeds: [5], arms: ['normal', 'selective'] },
        tracking: { mlflow: { enabled: true } },
      },
      'records recipe',
    );
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const progress = createProgress({ stream, tty: false });
    const result = await runRecipe(recipe, {
      outDir: tempRuns('records'),
      progress,
      reporter: writeRunReport,
    });
    expect(result.status).toBe('finished');

    // One epoch convention (epochs finished) in the console, CSV, JSON, checkpoints, report.
    expect(lines.some((l) => l.startsWith('normal-s5 epoch 2/2'))).toBe(true);
    const file = (name: string) => fs.readFileSync(path.join(result.dir, name), 'utf8');
    const csv = file('metrics.csv').trim().split('\n').slice(1);
    expect(csv.map((l) => l.split(',').slice(0, 2).join(':'))).toEqual([
      'train:1',
      'normal-s5:1',
      'normal-s5:2',
      'selective-s5:1',
      'selective-s5:2',
    ]);
    expect(JSON.parse(file('run.json'))).toMatchObject({
      epochs: EPOCH_CONVENTION,
      checkpoint: { phase: 'selective-s5', epoch: 2 },
    });
    expect(fs.readdirSync(path.join(result.dir, 'checkpoints', 'normal-s5'))).toEqual([
      'epoch-002',
    ]);
    expect(JSON.parse(file('analysis/train/epoch-001.json')).epoch).toBe(1);
    expect(JSON.parse(file('analysis/selective-s5/start.json')).epoch).toBe(0);
    const grids = JSON.parse(file('labels.json')) as { phase: string; epochs: number[] }[];
    expect(grids.map((g) => [g.phase, g.epochs])).toEqual([
      ['train', [1]],
      ['selective-s5', [0, 1]], // its start (inherited from train), after its epoch 1
    ]);
    expect(file('report.html')).toContain('<td>normal-s5</td><td>2</td>');

    const back = read('records-from-env');
    expect(back.tags['mlflow.experimentKind']).toBe('custom_model_development');
    const parent = back.runs.find((r) => r.runId === result.mlflowRunId);
    if (!parent) throw new Error('no parent run');
    expect(parent.tags['mlflow.note.content']).toContain('recipe **tiny**');
    expect(parent.tags['mlflow.note.content']).toContain('Tiny run for the MLflow records test.');
    for (const file of [
      'recipe.json',
      'run.json',
      'metrics.csv',
      'metrics.json',
      'labels.json',
      'labels.csv',
      'frozen.json',
      'comparison.json',
      'model/model.json',
      'model/weights.bin',
      'model/MLmodel',
    ]) {
      expect(parent.files).toContain(file);
    }
    // epoch is a step and seeds a param, never a metric
    expect(parent.metrics.filter((k) => /(^|\/)(epoch|seed|seeds)$/.test(k))).toEqual([]);
    expect(parent.params['comparison.seeds']).toBe('[5]');
    expect(lines).toContain(
      `MLflow run: ${mlflow().url}/#/experiments/${back.experimentId}/runs/${parent.runId}`,
    );

    for (const arm of ['normal', 'selective']) {
      const child = back.runs.find((r) => r.runName.endsWith(`/${arm}-s5`));
      if (!child?.model) throw new Error(`the ${arm} child run has no model`);
      expect(child.tags['mlflow.parentRunId']).toBe(parent.runId);
      expect(child.tags['mlflow.note.content']).toContain(`arm \`${arm}\`, seed 5`);
      expect(child.metrics).not.toContain('epoch');
      // one epoch convention: epochs finished, here as the MLflow step (see EPOCH_CONVENTION)
      expect(child.steps).toEqual([1, 2]);
      expect(child.files).toEqual(
        expect.arrayContaining(['model/model.json', 'model/weights.bin']),
      );
      expect(child.model.inputs).toEqual([
        expect.objectContaining({
          type: 'tensor',
          'tensor-spec': { dtype: 'float32', shape: [-1, 28, 28, 1] },
        }),
      ]);
      expect(child.model.outputs).toEqual([
        expect.objectContaining({ 'tensor-spec': { dtype: 'float32', shape: [-1, 10] } }),
      ]);
      // the downloaded files load back into a model that predicts like one
      const modelJson = JSON.parse(
        fs.readFileSync(path.join(child.model.dir, 'model.json'), 'utf8'),
      );
      const weights = fs.readFileSync(path.join(child.model.dir, 'weights.bin'));
      const model = await tf.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: modelJson.modelTopology,
          weightSpecs: modelJson.weightsManifest[0].weights,
          weightData: new Uint8Array(weights).buffer,
        }),
      );
      const y = tf.tidy(() => (model.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor).sum(1));
      expect(Array.from(await y.data()).map((v) => Math.round(v * 1000))).toEqual([1000, 1000]);
      y.dispose();
      model.dispose();
    }
  }, 600_000);
});
