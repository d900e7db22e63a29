/**
 * Crash safety of a run folder, by injection: kill points through a checkpoint write (each
 * instant's files resumed, to the uninterrupted result), a full disk, two runs of one folder,
 * two Ctrl-C presses, and corrupt files that must be named.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {
  loadCheckpoint,
  RunFolder,
  runRecipe,
  saveCheckpoint,
  setKillPointHook,
  type MetricRow,
} from '../src/experiment';
import { createProgress } from '../src/experiment/progress';
import { readRunData } from '../src/report/run-data';
import { buildModel } from '../src/models';
import { projectPath, runNodeScript } from './support/child-script';
import { tempRuns, tinyRecipe } from './recipes-helpers';

const silent = () => createProgress({ silent: true });
/** A pid that no process has now (a child that has exited). */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid as number;

const recipe = tinyRecipe({
  name: 'faults',
  dataset: { name: 'mnist', trainSize: 150, testSize: 60, seed: 1 },
  training: { batchSize: 50, epochs: 2, seed: 3 },
  retraining: { enabled: false },
  tracking: { checkpoints: 'last', mlflow: { enabled: false } },
});

/** The folder's outcome without timings: metrics rows and every analysis report's text. */
function outcome(dir: string): { rows: Partial<MetricRow>[]; reports: Record<string, string> } {
  const folder = new RunFolder(dir);
  const rows = folder
    .readMetrics()
    .map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.endsWith('_seconds'))));
  const reports: Record<string, string> = {};
  const analysis = path.join(dir, 'analysis', 'train');
  for (const file of fs.readdirSync(analysis).filter((f) => f.endsWith('.json'))) {
    reports[file] = fs
      .readFileSync(path.join(analysis, file), 'utf8')
      .replace(/"seconds": [0-9.e+-]+/g, '"seconds": 0');
  }
  return { rows, reports };
}

afterEach(() => setKillPointHook(undefined));

describe('a checkpoint write, killed at every instant, resumes to the uninterrupted result', () => {
  const root = tempRuns('kill-points');
  const snapshots: Array<{ point: string; dir: string }> = [];
  let reference: string;

  beforeAll(async () => {
    // One uninterrupted run; at each kill point of the second epoch's checkpoint (write →
    // run.json → prune) the folder is copied as a crash there would leave it: run.json still
    // 'running' and run.lock naming a process that is gone.
    let capturing = false;
    setKillPointHook((point) => {
      if (point.includes(path.join('checkpoints', 'train', 'epoch-002'))) capturing = true;
      if (!capturing) return;
      const dir = path.join(root, 'snapshots', String(snapshots.length));
      fs.cpSync(reference, dir, { recursive: true });
      const lock = path.join(dir, 'run.lock');
      const owner = JSON.parse(fs.readFileSync(lock, 'utf8'));
      fs.writeFileSync(lock, JSON.stringify({ ...owner, pid: deadPid() }));
      snapshots.push({ point, dir });
      if (point.startsWith(path.join('checkpoints', 'train', 'epoch-001'))) capturing = false;
    });
    // A model built before makes tfjs name the run's variables conv1/kernel_1, ….
    buildModel('small_cnn').dispose();
    const outDir = path.join(root, 'reference');
    fs.mkdirSync(outDir);
    const started = runRecipe(recipe, { outDir, progress: silent(), report: false });
    reference = path.join(outDir, fs.readdirSync(outDir)[0]);
    const result = await started;
    setKillPointHook(undefined);
    expect(result.status).toBe('finished');
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('passes every instant: files written, checkpoint in place, run.json, old checkpoint pruned', () => {
    const points = snapshots.map((s) => s.point.replace(/^.*checkpoints/, 'checkpoints'));
    for (const file of ['model.json', 'weights.bin', 'optimizer.json', 'state.json']) {
      expect(points).toContain(path.join('checkpoints', 'train', `epoch-002.tmp: ${file} written`));
    }
    expect(points).toContain(path.join('checkpoints', 'train', 'epoch-002: in place'));
    expect(points).toContain('run.json: temporary file written');
    expect(points[points.length - 1]).toBe(path.join('checkpoints', 'train', 'epoch-001: removed'));
    // run.json moves to the new checkpoint before the old one goes.
    expect(points.indexOf('run.json: temporary file written')).toBeLessThan(points.length - 1);
  });

  it('resumes from each instant to the same metrics and byte-identical reports (timings apart)', async () => {
    const expected = outcome(reference);
    expect(expected.rows.map((r) => r.epoch)).toEqual([1, 2]);
    for (const { point, dir } of snapshots) {
      const result = await runRecipe(recipe, { resume: dir, progress: silent(), report: false });
      expect({ point, status: result.status }).toEqual({ point, status: 'finished' });
      const got = outcome(dir);
      expect({ point, rows: got.rows }).toEqual({ point, rows: expected.rows });
      expect({ point, reports: got.reports }).toEqual({ point, reports: expected.reports });
    }
  });

  it('stores analysed weights under stable names (conv1/kernel, not conv1/kernel_3)', () => {
    const report = JSON.parse(outcome(reference).reports['epoch-002.json']);
    const model = buildModel('small_cnn');
    const stable = model.weights.map((w) => w.originalName);
    model.dispose();
    expect(report.options.parameters.length).toBeGreaterThan(0);
    for (const name of report.options.parameters) expect(stable).toContain(name);
  });
});

describe('stale and concurrent runs', () => {
  const root = tempRuns('stale');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a full disk leaves a run that reads as killed, resumes, and finishes', async () => {
    const outDir = path.join(root, 'enospc');
    let full = false;
    setKillPointHook((point) => {
      if (full && point === 'run.json: about to write') {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
        });
      }
    });
    await expect(
      runRecipe(recipe, {
        outDir,
        progress: silent(),
        report: false,
        onEpochEnd: () => (full = true),
      }),
    ).rejects.toThrow(/ENOSPC/);
    setKillPointHook(undefined);
    const dir = path.join(outDir, fs.readdirSync(outDir)[0]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')).status).toBe('running');
    expect(fs.existsSync(path.join(dir, 'run.lock'))).toBe(false);
    expect(readRunData(dir).info.status).toBe('killed');
    const resumed = await runRecipe(recipe, { resume: dir, progress: silent(), report: false });
    expect(resumed.status).toBe('finished');
    expect(readRunData(dir).info.status).toBe('finished');
  });

  it('refuses a second run of a folder while the first runs, naming the process', async () => {
    const outDir = path.join(root, 'twice');
    let dir = '';
    const stopped = await runRecipe(recipe, {
      outDir,
      progress: silent(),
      report: false,
      onEpochEnd: (_phase, epoch) => {
        if (epoch === 1) throw new Error('stop here');
      },
    }).catch((err: Error) => err.message);
    expect(stopped).toBe('stop here');
    dir = path.join(outDir, fs.readdirSync(outDir)[0]);
    const first = runRecipe(recipe, { resume: dir, progress: silent(), report: false });
    await expect(
      runRecipe(recipe, { resume: dir, progress: silent(), report: false }),
    ).rejects.toThrow(
      new RegExp(`is already being run by process ${process.pid} .*run\\.lock.*delete`),
    );
    expect((await first).status).toBe('finished');
    expect(fs.existsSync(path.join(dir, 'run.lock'))).toBe(false);
  });

  it('two Ctrl-C presses exit at once and leave the run marked killed, unlocked', async () => {
    const dir = path.join(root, 'ctrl-c');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'recipe.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ ...recipe, training: { ...recipe.training, epochs: 3 } }),
    );
    const { code, out } = await runNodeScript(`
      const { Writable } = require('stream');
      const { main } = require(${projectPath('cli/main.ts')});
      let sent = false;
      const progressStream = new Writable({
        write(chunk, _enc, done) {
          if (!sent && /train epoch 1\\/3/.test(String(chunk))) {
            sent = true;
            process.emit('SIGINT');
            process.emit('SIGINT');
          }
          done();
        },
      });
      main(['run', ${JSON.stringify(file)}, '--out', ${JSON.stringify(path.join(dir, 'runs'))}, '--no-report'],
        { out: () => {}, err: (t) => console.error(t), progressStream, tty: false });
    `);
    expect({ code, out }).toEqual({ code: 130, out: expect.stringContaining('interrupted') });
    const runs = path.join(dir, 'runs');
    const runDir = path.join(runs, fs.readdirSync(runs)[0]);
    const info = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    expect(info.status).toBe('killed');
    expect(info.invocations[0].status).toBe('killed');
    expect(fs.existsSync(path.join(runDir, 'run.lock'))).toBe(false);
  });
});

describe('corrupt files are named', () => {
  const root = tempRuns('corrupt');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('run.json, metrics.json, model.json and a truncated weights.bin', async () => {
    const folder = new RunFolder(root);
    fs.writeFileSync(folder.file('run.json'), '{"id": "x", "sta');
    expect(() => folder.readInfo()).toThrow(
      new RegExp(`${folder.file('run.json')} is not valid JSON .*truncated or corrupt`),
    );
    fs.writeFileSync(folder.file('metrics.json'), '');
    expect(() => folder.readMetrics()).toThrow(/metrics\.json is not valid JSON/);

    const model = buildModel('small_cnn');
    const dir = path.join(root, 'checkpoint');
    await saveCheckpoint(dir, model, { epoch: 0 });
    const weights = path.join(dir, 'weights.bin');
    const bytes = fs.readFileSync(weights);
    fs.writeFileSync(weights, bytes.subarray(0, bytes.length - 100));
    const before = tf.memory().numTensors;
    await expect(loadCheckpoint(dir, model)).rejects.toThrow(
      new RegExp(`${weights} holds ${bytes.length - 100} bytes; .* ${bytes.length} bytes`),
    );
    expect(tf.memory().numTensors).toBe(before);
    fs.writeFileSync(path.join(dir, 'model.json'), '{"format": "layers-model", ');
    await expect(loadCheckpoint(dir, model)).rejects.toThrow(
      /model\.json is not valid JSON .*expected a tfjs layers-model file/,
    );
    model.dispose();
  });
});
