/**
 * The command line, in-process: help, recipe errors before anything runs, a run stopped by
 * Ctrl-C (exit 130, folder kept) and resumed, report and compare, and the progress display.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Writable } from 'stream';
import { main } from '../cli/main';
import { createProgress, plainLine } from '../src/experiment/progress';
import { tempRuns } from './recipes-helpers';
import { captureCli } from './support/cli-io';

const TINY = {
  name: 'cli-tiny',
  model: { architecture: 'small_cnn' },
  dataset: { name: 'mnist', trainSize: 200, validationSize: 40, testSize: 80, seed: 2 },
  training: { batchSize: 50, epochs: 2, seed: 1 },
  analysis: { epsilon: 0.3, steps: 3, filters: ['lowpass'], examples: 40 },
  retraining: { enabled: true, epochs: 1, seeds: [0] },
  tracking: { mlflow: { enabled: false } },
};

describe('tfjs-antifragile CLI', () => {
  const dir = tempRuns('cli');
  const recipeFile = path.join(dir, 'tiny.json');
  fs.writeFileSync(recipeFile, JSON.stringify(TINY));

  it('has --help for the program and every command', async () => {
    for (const argv of [
      ['--help'],
      ['run', '--help'],
      ['report', '-h'],
      ['compare', '--help'],
      ['sync', '--help'],
      ['mlflow', '--help'],
      ['schema', '--help'],
      ['analyze', '--help'],
    ]) {
      const c = captureCli();
      expect(await main(argv, c.io)).toBe(0);
      expect(c.out.join('\n')).toMatch(/Usage/);
    }
    const none = captureCli();
    expect(await main([], none.io)).toBe(2);
    const unknown = captureCli();
    expect(await main(['train'], unknown.io)).toBe(2);
    expect(unknown.err.join('\n')).toMatch(
      /unknown command 'train'; use one of run, report, compare, sync, mlflow, schema/,
    );
    const badFlag = captureCli();
    expect(await main(['run', recipeFile, '--epochs', '3'], badFlag.io)).toBe(2);
    expect(badFlag.err.join('\n')).toMatch(/Unknown option '--epochs'/);
  });

  it('lists every recipe error, with its JSON path, before anything runs', async () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(
      bad,
      JSON.stringify({
        ...TINY,
        model: { architecture: 'lenet' },
        training: { epochs: 0 },
        analysis: { steps: 3 },
      }),
    );
    const out = path.join(dir, 'bad-runs');
    const c = captureCli();
    expect(await main(['run', bad, '--out', out], c.io)).toBe(2);
    const text = c.err.join('\n');
    expect(text).toMatch(/bad\.json: 3 problems in the recipe/);
    expect(text).toMatch(/\/model\/architecture: must be one of .*; got "lenet"/);
    expect(text).toContain('/training/epochs: must be >= 1; got 0');
    expect(text).toMatch(/\/analysis\/epsilon: is required/);
    expect(fs.existsSync(out)).toBe(false);
    expect(c.progress).toEqual([]);
  });

  it('report --help offers no option it rejects', async () => {
    const c = captureCli();
    expect(await main(['report', '--help'], c.io)).toBe(0);
    expect(c.out.join('\n')).toMatch(/^Usage: tfjs-antifragile report <run-dir>$/m);
    expect(c.out.join('\n')).not.toContain('--open');
  });

  it('a missing dataset folder exits 2 before any run folder is made', async () => {
    const recipeFile = path.join(dir, 'no-data.json');
    const missing = path.join(dir, 'no-such-cifar');
    fs.writeFileSync(
      recipeFile,
      JSON.stringify({
        name: 'no-data',
        model: { architecture: 'small_cnn' },
        dataset: { name: 'cifar10', dir: missing },
        analysis: { epsilon: 0.1 },
      }),
    );
    const out = path.join(dir, 'no-data-runs');
    const c = captureCli();
    expect(await main(['run', recipeFile, '--out', out], c.io)).toBe(2);
    expect(c.err.join('\n')).toContain(
      `/dataset/dir: the cifar10 folder "${missing}" does not exist`,
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--set overrides recipe fields (validated, recorded in the run folder); not on --resume', async () => {
    const out = path.join(dir, 'set-runs');
    const bad = captureCli();
    expect(
      await main(['run', recipeFile, '--out', out, '--set', 'training.epochs=-1'], bad.io),
    ).toBe(2);
    expect(bad.err.join('\n')).toContain('/training/epochs: must be >= 1; got -1');
    const noEq = captureCli();
    expect(await main(['run', recipeFile, '--set', 'training.epochs'], noEq.io)).toBe(2);
    expect(noEq.err.join('\n')).toMatch(/expected <field\.path>=<value>/);
    expect(fs.existsSync(out)).toBe(false);

    const c = captureCli();
    const args = ['run', recipeFile, '--out', out, '--no-report'];
    const sets = ['training.epochs=1', 'retraining.enabled=false', 'analysis.steps=4'];
    const code = await main([...args, ...sets.flatMap((s) => ['--set', s])], c.io);
    expect(c.err.join('\n')).toBe('');
    expect(code).toBe(0);
    const runDir = path.join(out, fs.readdirSync(out)[0]);
    const saved = JSON.parse(fs.readFileSync(path.join(runDir, 'recipe.json'), 'utf8'));
    expect(saved.training.epochs).toBe(1);
    expect(saved.retraining.enabled).toBe(false);
    expect(saved.analysis.steps).toBe(4);
    const rows = JSON.parse(fs.readFileSync(path.join(runDir, 'metrics.json'), 'utf8'));
    expect(rows.map((r: { phase: string }) => r.phase)).toEqual(['train']);
    const resumed = captureCli();
    expect(await main(['run', '--resume', runDir, '--set', 'training.epochs=3'], resumed.io)).toBe(
      2,
    );
    expect(resumed.err.join('\n')).toMatch(/--set cannot change a resumed run/);
  });

  it('Ctrl-C stops after the epoch (exit 130); --resume finishes; report and compare read the folder', async () => {
    const out = path.join(dir, 'runs');
    let sent = false;
    const first = captureCli((line) => {
      if (!sent && line.startsWith('train epoch 1/2: 4/4 batches in')) {
        sent = true;
        process.emit('SIGINT');
      }
    });
    expect(await main(['run', recipeFile, '--out', out, '--no-report'], first.io)).toBe(130);
    expect(first.progress.join('\n')).toMatch(/Ctrl-C: stopping after the current epoch/);
    const runDir = path.join(out, fs.readdirSync(out)[0]);
    const info = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    expect(info.status).toBe('killed');
    expect(info.checkpoint.epoch).toBe(1);
    expect(first.out.join('\n')).toContain('killed:');
    expect(process.listenerCount('SIGINT')).toBe(0);

    // A different recipe cannot take over the run.
    const other = path.join(dir, 'other.json');
    fs.writeFileSync(other, JSON.stringify({ ...TINY, training: { ...TINY.training, epochs: 3 } }));
    const mismatch = captureCli();
    expect(await main(['run', other, '--resume', runDir], mismatch.io)).toBe(2);
    expect(mismatch.err.join('\n')).toMatch(/differs from the recipe of/);

    const second = captureCli();
    expect(await main(['run', '--resume', runDir], second.io)).toBe(0);
    const progress = second.progress.join('\n');
    expect(progress).toMatch(/train: resuming at epoch 2\/2/);
    expect(progress).toMatch(
      /selective-s0 epoch 1\/1: 4\/4 batches in \d+s; loss [\d.]+, acc [\d.]+\n/,
    );
    expect(progress).toMatch(
      /selective-s0 epoch 1\/1 results: test [\d.]+, FGSM [\d.]+, PGD [\d.]+, frozen \d+ \(evaluated in \d+s\)/,
    );
    // The epoch's line times its batches only; its analysis follows it, then its results.
    const at = (re: RegExp) => second.progress.findIndex((l) => re.test(l));
    const epochLine = at(/^train epoch 2\/2: 4\/4 batches in \d+s; loss/);
    const analysisLine = at(/^train analysis after epoch 2: \d+\/\d+ steps in \d+s/);
    const resultsLine = at(/^train epoch 2\/2 results: test/);
    expect(epochLine).toBeGreaterThanOrEqual(0);
    expect([epochLine < analysisLine, analysisLine < resultsLine]).toEqual([true, true]);
    expect(second.out.join('\n')).toMatch(
      /normal vs selective retraining \(mean over 1 seed\(s\)\): clean/,
    );
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status).toBe(
      'finished',
    );
    expect(fs.existsSync(path.join(runDir, 'report.html'))).toBe(true);

    fs.rmSync(path.join(runDir, 'report.html'));
    const report = captureCli();
    expect(await main(['report', runDir], report.io)).toBe(0);
    expect(fs.existsSync(path.join(runDir, 'report.html'))).toBe(true);

    const page = path.join(dir, 'side-by-side.html');
    const compare = captureCli();
    expect(await main(['compare', runDir, runDir, '--out', page], compare.io)).toBe(0);
    const table = compare.out.join('\n');
    expect(table).toMatch(/^run\s+status\s+model\s+dataset\s+epochs\s+test acc\s+FGSM acc/);
    expect(table.split('\n').filter((l) => l.startsWith(path.basename(runDir)))).toHaveLength(2);
    expect(fs.existsSync(page)).toBe(true);

    const missing = captureCli();
    expect(await main(['report', path.join(dir, 'nope')], missing.io)).toBe(1);
    expect(missing.err.join('\n')).toMatch(/is not a run folder: run\.json is missing/);
  });

  it('schema prints or writes the published schema', async () => {
    const c = captureCli();
    expect(await main(['schema'], c.io)).toBe(0);
    expect(JSON.parse(c.out.join(''))).toEqual(
      JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'recipes', 'schema.json'), 'utf8')),
    );
  });
});

describe('progress display', () => {
  function sink() {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        chunks.push(String(chunk));
        done();
      },
    });
    return { stream, text: () => chunks.join('') };
  }

  it('prints plain periodic lines with counts, rate and ETA when not on a terminal', () => {
    const s = sink();
    const progress = createProgress({ stream: s.stream, tty: false, intervalMs: 0 });
    const task = progress.task('train epoch 1/3', 10, 'batches');
    task.update(5, 'loss 0.5000');
    task.update(10);
    task.finish('acc 0.9');
    const lines = s.text().trim().split('\n');
    expect(lines[0]).toMatch(
      /^train epoch 1\/3: 5\/10 batches \(50%\), ([\d.]+|\?) batches\/s, ETA \S+, loss 0\.5000$/,
    );
    expect(lines[lines.length - 1]).toMatch(/^train epoch 1\/3: 10\/10 batches in \d+s; acc 0\.9$/);
    expect(plainLine('a', 3, 4, 'steps', 3)).toBe('a: 3/4 steps (75%), 1.00 steps/s, ETA 1s');
  });

  it('draws cli-progress bars on a terminal', async () => {
    const s = sink();
    // What cli-progress needs of a terminal: isTTY and a width (it moves the cursor with readline).
    Object.assign(s.stream, { isTTY: true, columns: 120 });
    const progress = createProgress({ stream: s.stream });
    const task = progress.task('analysis', 4, 'steps');
    task.update(2, 'conv1/kernel');
    await new Promise((r) => setTimeout(r, 500)); // cli-progress redraws on its own clock
    task.finish('done');
    progress.close();
    const text = s.text();
    expect(text).toMatch(/analysis \|[█░]+\| 2\/4 steps \| .* \| ETA/);
    expect(text).toContain('analysis: 2/4 steps in');
  });
});
