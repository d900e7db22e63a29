/**
 * Recipes: the published schema, validation errors, the recipes shipped in recipes/, and the
 * runner's run folder, checkpoints and resumption (resume == uninterrupted).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {
  applyOverrides,
  disposeRecipeData,
  loadCheckpoint,
  loadRecipe,
  loadRecipeData,
  meanStd,
  summarizeSweep,
  sweepMarkdownTable,
  sweepGainSentences,
  type Comparison,
  RecipeError,
  recipeSchemaJson,
  runRecipe,
  saveCheckpoint,
  validateRecipe,
  type MetricRow,
} from '../src/experiment';
import { createProgress } from '../src/experiment/progress';
import { buildModel } from '../src/models';
import { tempRuns, tinyRecipe } from './recipes-helpers';

const RECIPES = path.join(__dirname, '..', 'recipes');
const silent = () => createProgress({ silent: true });

describe('recipe schema and validation', () => {
  it('recipes/schema.json is the published form of RECIPE_SCHEMA', () => {
    const published = JSON.parse(fs.readFileSync(path.join(RECIPES, 'schema.json'), 'utf8'));
    expect(published).toEqual(JSON.parse(recipeSchemaJson()));
    const schema = JSON.parse(recipeSchemaJson());
    // Every field documents itself.
    const missing: string[] = [];
    const visit = (node: Record<string, unknown>, at: string) => {
      const props = node.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [key, child] of Object.entries(props ?? {})) {
        if (key !== '$schema' && !child.description) missing.push(`${at}/${key}`);
        visit(child, `${at}/${key}`);
      }
    };
    visit(schema, '');
    expect(missing).toEqual([]);
  });

  it('fills in every default', () => {
    const recipe = validateRecipe({
      model: { architecture: 'resnet18' },
      analysis: { epsilon: 0.1 },
    });
    expect(recipe.training).toEqual({
      optimizer: 'adam',
      learningRate: 0.001,
      batchSize: 100,
      epochs: 2,
      seed: 0,
    });
    expect(recipe.analysis.steps).toBe(25);
    expect(recipe.analysis.filters).toEqual(['highpass', 'lowpass', 'pulse']);
    expect(recipe.retraining.enabled).toBe(false);
    expect(recipe.dataset).toEqual({ name: 'mnist', seed: 0 });
  });

  it('lists every error with its JSON path and what is allowed', () => {
    let error: RecipeError | undefined;
    try {
      validateRecipe(
        {
          model: { architecture: 'vgg16', width: 0 },
          dataset: { name: 'mnist', trainSize: -5 },
          training: { optimizer: 'adagrad', epochs: 1.5, momentum: 0.9 },
          analysis: { steps: 2, filters: ['bandpass'] },
          retraining: { filters: 'most' },
        },
        'bad.json',
      );
    } catch (err) {
      error = err as RecipeError;
    }
    expect(error).toBeInstanceOf(RecipeError);
    const text = error!.problems.join('\n');
    expect(error!.problems.length).toBeGreaterThanOrEqual(9);
    expect(text).toContain(
      '/model/architecture: must be one of "resnet18", "resnet50", "squeezenet1_1", "shufflenet_v2_x1_0", "small_cnn"; got "vgg16"',
    );
    expect(text).toContain('/model/width: must be > 0; got 0');
    expect(text).toContain('/dataset/trainSize: must be >= 1; got -5');
    expect(text).toContain(
      '/training/optimizer: must be one of "adam", "sgd", "momentum", "rmsprop"; got "adagrad"',
    );
    expect(text).toContain('/training/epochs: must be integer; got 1.5');
    expect(text).toMatch(
      /\/training\/momentum: unknown field; allowed here: optimizer, learningRate/,
    );
    expect(text).toMatch(/\/analysis\/epsilon: is required \(FGSM\/PGD radius/);
    expect(text).toContain('/analysis/steps: must be >= 3; got 2');
    expect(text).toContain('/analysis/filters/0: must be one of');
    expect(text).toContain('/retraining/filters: does not match any allowed form');
    expect(error!.message).toMatch(/^bad\.json: \d+ problems in the recipe:/);
  });

  it('checks rules across fields', () => {
    expect(() =>
      validateRecipe({
        model: { architecture: 'small_cnn', width: 0.5 },
        dataset: { name: 'cifar10', testSize: 100 },
        analysis: { epsilon: 0.02, examples: 200, filters: ['h_b'], enabled: false },
        retraining: { enabled: true, filters: ['pulse'] },
      }),
    ).toThrow(
      new RegExp(
        [
          '/model/width: small_cnn has no width option',
          '/dataset/dir: is required for cifar10',
          '/analysis/examples: 200 is more than the 100 test examples',
          '/retraining/enabled: selective retraining needs the analysis labels',
          '/retraining/filters: \\["pulse"\\] not swept by the analysis',
        ].join('[\\s\\S]*'),
      ),
    );
  });

  it('reports a file that is missing or not JSON', () => {
    const dir = tempRuns('bad');
    fs.writeFileSync(path.join(dir, 'broken.json'), '{ "model": ');
    expect(() => loadRecipe(path.join(dir, 'broken.json'))).toThrow(
      /broken\.json: 1 problem[\s\S]*not valid JSON/,
    );
    expect(() => loadRecipe(path.join(dir, 'none.json'))).toThrow(/cannot read the file/);
  });

  it('applies --set overrides before validation, and names what is wrong with one', () => {
    const base = { model: { architecture: 'small_cnn' }, analysis: { epsilon: 0.1 } };
    const recipe = validateRecipe(
      applyOverrides(base, [
        'training.seed=7',
        'retraining.seeds=[1,2]',
        'tracking.mlflow.experimentName=sweep',
        'dataset.name="mnist"',
      ]),
    );
    expect(recipe.training.seed).toBe(7);
    expect(recipe.retraining.seeds).toEqual([1, 2]);
    expect(recipe.tracking.mlflow.experimentName).toBe('sweep');
    expect(base).toEqual({ model: { architecture: 'small_cnn' }, analysis: { epsilon: 0.1 } });
    expect(() => applyOverrides(base, ['training.seed', 'model.architecture.x=1'])).toThrow(
      /--set training\.seed: expected <field\.path>=<value>[\s\S]*--set model\.architecture\.x=1: \/model\/architecture is "small_cnn", not an object/,
    );
    // Path segments that reach a prototype are refused, and nothing is polluted.
    for (const bad of ['__proto__.polluted=1', 'training.constructor.prototype.polluted=1']) {
      expect(() => applyOverrides(base, [bad])).toThrow(/cannot be a field path segment/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const dir = tempRuns('overrides');
    const file = path.join(dir, 'r.json');
    fs.writeFileSync(file, JSON.stringify(base));
    expect(() => loadRecipe(file, ['training.epochs=0'])).toThrow(
      /r\.json with --set training\.epochs=0: 1 problem[\s\S]*\/training\/epochs: must be >= 1; got 0/,
    );
  });

  it('dataset.validationSize holds analysis examples out of the training data, apart from the test set', async () => {
    const recipe = tinyRecipe({
      dataset: { name: 'mnist', trainSize: 200, validationSize: 50, testSize: 100, seed: 4 },
      analysis: { epsilon: 0.3, steps: 3, filters: ['lowpass'], examples: 40 },
    });
    const data = await loadRecipeData(recipe);
    try {
      expect(data.train.xs.shape[0]).toBe(200);
      expect(data.analysis.xs.shape[0]).toBe(40);
      const rows = async (t: tf.Tensor) =>
        ((await t.reshape([t.shape[0], -1]).array()) as number[][]).map((r) => r.join());
      const analysis = new Set(await rows(data.analysis.xs));
      const train = await rows(data.train.xs);
      const test = await rows(data.test.xs);
      expect(train.some((r) => analysis.has(r))).toBe(false);
      expect(test.some((r) => analysis.has(r))).toBe(false);
    } finally {
      disposeRecipeData(data);
    }
    expect(() =>
      tinyRecipe({
        dataset: { name: 'mnist', trainSize: 200, validationSize: 30, testSize: 100 },
        analysis: { epsilon: 0.3, examples: 40 },
      }),
    ).toThrow(/\/analysis\/examples: 40 is more than the 30 validation examples/);
  });

  it('every recipe in recipes/ is valid, and the paper systems are all there', () => {
    const files = fs.readdirSync(RECIPES).filter((f) => f.endsWith('.json') && f !== 'schema.json');
    const systems = new Set<string>();
    for (const file of files) {
      const recipe = loadRecipe(path.join(RECIPES, file));
      systems.add(`${recipe.model.architecture}/${recipe.dataset.name}`);
    }
    for (const arch of ['resnet18', 'resnet50', 'squeezenet1_1', 'shufflenet_v2_x1_0']) {
      for (const dataset of ['mnist', 'cifar10', 'tiny-imagenet']) {
        expect(systems).toContain(`${arch}/${dataset}`);
      }
    }
    const reproduce = fs.readdirSync(path.join(RECIPES, 'reproduce'));
    expect(reproduce.length).toBe(4);
    for (const file of reproduce) {
      const recipe = loadRecipe(path.join(RECIPES, 'reproduce', file));
      expect(recipe.retraining.enabled).toBe(true);
      expect(recipe.dataset.validationSize).toBeGreaterThanOrEqual(recipe.analysis.examples);
    }
    const dflt = loadRecipe(path.join(RECIPES, 'default.json'));
    expect(dflt.dataset.dir).toBeUndefined(); // the bundled real digits: no download
    expect(dflt.retraining.enabled).toBe(true);
  });
});

describe('sweep summary', () => {
  const pair = (clean: number, fgsm: number, pgd: number) => ({ clean, fgsm, pgd });
  const comparison = (normal: number, selective: number): Comparison => ({
    seeds: [
      {
        seed: 0,
        start: pair(0.5, 0.1, 0),
        normal: pair(0.9, normal, 0.1),
        selective: pair(0.8, selective, 0.2),
        frozenAtEnd: 2,
      },
    ],
    mean: {
      start: pair(0.5, 0.1, 0),
      normal: pair(0.9, normal, 0.1),
      selective: pair(0.8, selective, 0.2),
    },
    gain: pair(-0.1, selective - normal, 0.1),
  });

  it('mean ± sample std per system and arm, and of the per-seed gain', () => {
    expect(meanStd([1, 2, 3, 4])).toEqual({ mean: 2.5, std: Math.sqrt(5 / 3), n: 4 });
    expect(meanStd([0.7])).toEqual({ mean: 0.7, std: 0, n: 1 });
    const [a, b] = summarizeSweep([
      { system: 'a', seed: 0, comparison: comparison(0.3, 0.4), seconds: 10 },
      { system: 'b', seed: 0, comparison: comparison(0.5, 0.5), seconds: 1 },
      { system: 'a', seed: 1, comparison: comparison(0.5, 0.4), seconds: 20 },
    ]);
    expect(a.system).toBe('a');
    expect(a.seeds).toEqual([0, 1]);
    expect(a.normal.fgsm.mean).toBeCloseTo(0.4, 12);
    expect(a.normal.fgsm.std).toBeCloseTo(Math.SQRT2 * 0.1, 12);
    expect(a.selective.fgsm).toEqual({ mean: 0.4, std: 0, n: 2 });
    expect(a.gain.fgsm.mean).toBeCloseTo(0, 12);
    expect(a.gain.clean.mean).toBeCloseTo(-0.1, 12);
    expect(a.seconds).toBe(30);
    expect(a.frozenAtEnd).toBe(2);
    expect(b.normal.fgsm.n).toBe(1);
    const table = sweepMarkdownTable([a, b]);
    expect(table).toContain('| a | normal | 2 | 90.0 ± 0.0 | 40.0 ± 14.1 | 10.0 ± 0.0 | 0 |');
    expect(table).toContain('| a | selective | 2 | 80.0 ± 0.0 | 40.0 ± 0.0 | 20.0 ± 0.0 | 2 |');
    // paired gains in points with t-based 95% intervals: FGSM +10 and −10 → 0 ± 12.706 · 14.1 / √2
    expect(table).toContain(
      '| a | selective − normal (points, 95% CI) | 2 | -10.0 (95% CI [-10.0, -10.0], n = 2) | +0.0 (95% CI [-127.1, +127.1], n = 2) | +10.0 (95% CI [+10.0, +10.0], n = 2) | |',
    );
    expect(a.gains.selective.fgsm.ci95[1]).toBeCloseTo(
      (12.7062 * Math.SQRT2 * 0.1) / Math.SQRT2,
      3,
    );
    expect(sweepGainSentences([a])).toEqual([
      expect.stringMatching(
        /^a: selective − normal: FGSM \+0\.0 points .*no detectable difference at n = 2\.$/,
      ),
    ]);
  });
});

describe('checkpoints', () => {
  it('save → load restores weights and Adam state bit for bit', async () => {
    const dir = tempRuns('ckpt');
    const make = () => {
      const m = buildModel('small_cnn', { seed: 1 });
      m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
      return m;
    };
    const xs = tf.randomNormal([20, 28, 28, 1], 0, 1, 'float32', 1);
    const ys = tf.oneHot(
      tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'int32'),
      10,
    );
    const a = make();
    await a.fit(xs, ys, { epochs: 2, batchSize: 10, shuffle: false, verbose: 0 });
    await saveCheckpoint(path.join(dir, 'c'), a, { note: 'hi' });
    expect(fs.readdirSync(path.join(dir, 'c')).sort()).toEqual([
      'model.json',
      'optimizer.bin',
      'optimizer.json',
      'state.json',
      'weights.bin',
    ]);
    const b = make();
    const state = await loadCheckpoint<{ note: string }>(path.join(dir, 'c'), b);
    expect(state).toEqual({ note: 'hi' });
    // One more step each must give identical weights.
    await a.fit(xs, ys, { epochs: 1, batchSize: 10, shuffle: false, verbose: 0 });
    await b.fit(xs, ys, { epochs: 1, batchSize: 10, shuffle: false, verbose: 0 });
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
    expect(wb).toEqual(wa);
    const other = buildModel('resnet18', { width: 0.125, seed: 1 });
    await expect(loadCheckpoint(path.join(dir, 'c'), other)).rejects.toThrow(
      /does not fit the model/,
    );
    tf.dispose([xs, ys]);
    [a, b, other].forEach((m) => m.dispose());
  });
});

/** Rows without the wall-clock columns. */
function comparable(rows: MetricRow[]) {
  return rows.map((r) => {
    const { evaluation_seconds: _e, analysis_seconds: _a, ...rest } = r;
    return rest;
  });
}

function finalWeights(dir: string, phase: string): Buffer {
  const phaseDir = path.join(dir, 'checkpoints', phase);
  const last = fs.readdirSync(phaseDir).sort().pop()!;
  return fs.readFileSync(path.join(phaseDir, last, 'weights.bin'));
}

describe('runRecipe', () => {
  const out = tempRuns('runner');
  let uninterrupted: Awaited<ReturnType<typeof runRecipe>>;

  beforeAll(async () => {
    uninterrupted = await runRecipe(tinyRecipe(), {
      outDir: out,
      progress: silent(),
      report: false,
    });
  });

  it('writes the run folder', () => {
    const dir = uninterrupted.dir;
    expect(uninterrupted.status).toBe('finished');
    for (const file of [
      'recipe.json',
      'run.json',
      'metrics.json',
      'metrics.csv',
      'labels.json',
      'labels.csv',
      'frozen.json',
      'comparison.json',
      'analysis/train/epoch-001.json',
      'analysis/train/epoch-002.csv',
      'analysis/selective-s5/start.json',
      'analysis/selective-s5/epoch-001.json',
      'checkpoints/train/epoch-002/weights.bin',
      'checkpoints/normal-s5/epoch-002/optimizer.bin',
    ]) {
      expect(fs.existsSync(path.join(dir, file))).toBe(true);
    }
    // Only the newest checkpoint of each phase is kept by default.
    expect(fs.readdirSync(path.join(dir, 'checkpoints', 'train'))).toEqual(['epoch-002']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8'))).toEqual(
      tinyRecipe(),
    );
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
    expect(info.status).toBe('finished');
    expect(info.completedPhases).toEqual(['train', 'normal-s5', 'selective-s5']);
    const rows = uninterrupted.rows;
    expect(rows.map((r) => `${r.phase}:${r.epoch}`)).toEqual([
      'train:1',
      'train:2',
      'normal-s5:1',
      'normal-s5:2',
      'selective-s5:1',
      'selective-s5:2',
    ]);
    for (const r of rows) {
      expect(r.test_acc).toBeGreaterThanOrEqual(0);
      expect(r.test_fgsm_acc).toBeLessThanOrEqual(1);
    }
    const csv = fs.readFileSync(path.join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(7);
    expect(csv[0].split(',').slice(0, 6)).toEqual([
      'phase',
      'epoch',
      'loss',
      'acc',
      'test_acc',
      'test_fgsm_acc',
    ]);
    // Reports are stored under the weights' stable names, whichever model instance made them.
    const report = JSON.parse(
      fs.readFileSync(path.join(dir, 'analysis/selective-s5/epoch-001.json'), 'utf8'),
    );
    expect(report.parameters.map((p: { name: string }) => p.name)).toEqual([
      'conv1/kernel',
      'conv2/kernel',
      'dense1/kernel',
      'dense2/kernel',
    ]);
    const labels = JSON.parse(fs.readFileSync(path.join(dir, 'labels.json'), 'utf8'));
    const train = labels.find((g: { phase: string }) => g.phase === 'train');
    expect(train.epochs).toEqual([1, 2]);
    expect(train.labels.lowpass.adversarial).toHaveLength(4);
  });

  it('the two branches start from the same checkpoint and differ only by freezing', () => {
    const { comparison } = uninterrupted;
    expect(comparison).toBeDefined();
    expect(comparison!.seeds).toHaveLength(1);
    // PGD accuracy is measured once per phase, at its last epoch, and reaches the comparison.
    const withPgd = uninterrupted.rows.filter((r) => r.test_pgd_acc !== undefined);
    expect(withPgd.map((r) => [r.phase, r.epoch])).toEqual([
      ['train', 2],
      ['normal-s5', 2],
      ['selective-s5', 2],
    ]);
    for (const arm of [comparison!.mean.normal, comparison!.mean.selective]) {
      expect(arm.pgd).toBeGreaterThanOrEqual(0);
      expect(arm.pgd).toBeLessThanOrEqual(1);
    }
    expect(comparison!.gain.pgd).toBeCloseTo(
      comparison!.mean.selective.pgd! - comparison!.mean.normal.pgd!,
      12,
    );
    const frozen = JSON.parse(fs.readFileSync(path.join(uninterrupted.dir, 'frozen.json'), 'utf8'));
    expect(frozen.map((r: { epoch: number }) => r.epoch)).toEqual([1, 2]);
    const start = JSON.parse(
      fs.readFileSync(path.join(uninterrupted.dir, 'analysis/selective-s5/start.json'), 'utf8'),
    );
    const lastTrain = JSON.parse(
      fs.readFileSync(path.join(uninterrupted.dir, 'analysis/train/epoch-002.json'), 'utf8'),
    );
    expect(start.parameters).toEqual(lastTrain.parameters);
    const rows = uninterrupted.rows;
    const normal = rows.find((r) => r.phase === 'normal-s5' && r.epoch === 1)!;
    const selective = rows.find((r) => r.phase === 'selective-s5' && r.epoch === 1)!;
    const fragileAtStart = start.parameters.some(
      (p: { filters: { lowpass: { labels: { adversarial: string } } } }) =>
        p.filters.lowpass.labels.adversarial === 'fragile',
    );
    if (fragileAtStart) expect(selective.loss).not.toBe(normal.loss);
    else expect(selective.loss).toBe(normal.loss);
  });

  it('an interrupted run, resumed twice, ends exactly as the uninterrupted one', async () => {
    const stops = new Set(['train:1', 'selective-s5:1']);
    let controller = new AbortController();
    const options = () => ({
      progress: silent(),
      report: false,
      signal: controller.signal,
      onEpochEnd: (phase: string, epoch: number) => {
        if (stops.delete(`${phase}:${epoch}`)) controller.abort();
      },
    });
    const first = await runRecipe(tinyRecipe(), { outDir: out, ...options() });
    expect(first.status).toBe('killed');
    expect(first.rows.map((r) => `${r.phase}:${r.epoch}`)).toEqual(['train:1']);
    const info = JSON.parse(fs.readFileSync(path.join(first.dir, 'run.json'), 'utf8'));
    expect(info.status).toBe('killed');
    expect(info.checkpoint).toEqual({
      phase: 'train',
      epoch: 1,
      dir: path.join('checkpoints', 'train', 'epoch-001'),
    });

    controller = new AbortController();
    const second = await runRecipe(tinyRecipe(), { resume: first.dir, ...options() });
    expect(second.status).toBe('killed');
    expect(second.rows.at(-1)).toMatchObject({ phase: 'selective-s5', epoch: 1 });

    controller = new AbortController();
    const third = await runRecipe(tinyRecipe(), { resume: first.dir, ...options() });
    expect(third.status).toBe('finished');
    expect(third.dir).toBe(first.dir);
    expect(comparable(third.rows)).toEqual(comparable(uninterrupted.rows));
    for (const phase of ['train', 'normal-s5', 'selective-s5']) {
      expect(finalWeights(third.dir, phase).equals(finalWeights(uninterrupted.dir, phase))).toBe(
        true,
      );
    }
    const frozen = (dir: string) => fs.readFileSync(path.join(dir, 'frozen.json'), 'utf8');
    expect(frozen(third.dir)).toBe(frozen(uninterrupted.dir));
    expect(third.comparison).toEqual(uninterrupted.comparison);
    const runInfo = JSON.parse(fs.readFileSync(path.join(third.dir, 'run.json'), 'utf8'));
    expect(runInfo.invocations.map((i: { status: string }) => i.status)).toEqual([
      'killed',
      'killed',
      'finished',
    ]);
  });

  it('a selective branch resumed before its first refresh keeps the frozen set of its start report', async () => {
    // Labels refreshed every 2nd epoch: when the branch stops after epoch 0, its start report is
    // still the one that decided the frozen set; the checkpoint's state must carry that set on.
    const recipe = tinyRecipe({
      training: { batchSize: 50, epochs: 1, seed: 3 },
      retraining: { enabled: true, epochs: 2, seeds: [5], every: 2 },
      analysis: {
        epsilon: 0.3,
        steps: 3,
        filters: ['lowpass'],
        examples: 60,
        batchSize: 60,
        tolerance: 0,
      },
    });
    const quiet = { progress: silent(), report: false };
    const whole = await runRecipe(recipe, { outDir: out, ...quiet });
    const controller = new AbortController();
    const stopped = await runRecipe(recipe, {
      outDir: out,
      ...quiet,
      signal: controller.signal,
      onEpochEnd: (phase, epoch) => {
        if (phase === 'selective-s5' && epoch === 1) controller.abort();
      },
    });
    expect(stopped.status).toBe('killed');
    const resumed = await runRecipe(recipe, { resume: stopped.dir, ...quiet });
    expect(resumed.status).toBe('finished');
    const frozen = (dir: string) =>
      JSON.parse(fs.readFileSync(path.join(dir, 'frozen.json'), 'utf8'));
    // The start report did freeze something (else this would test nothing).
    expect(frozen(whole.dir)[0]).toMatchObject({ phase: 'selective-s5', epoch: 1 });
    expect(frozen(whole.dir)[0].layers.length).toBeGreaterThan(0);
    expect(frozen(resumed.dir)).toEqual(frozen(whole.dir));
    expect(comparable(resumed.rows)).toEqual(comparable(whole.rows));
    expect(
      finalWeights(resumed.dir, 'selective-s5').equals(finalWeights(whole.dir, 'selective-s5')),
    ).toBe(true);
  });

  it('keeps tensors balanced over a whole run', async () => {
    const before = tf.memory().numTensors;
    await runRecipe(
      tinyRecipe({ retraining: { enabled: false }, training: { epochs: 1, batchSize: 100 } }),
      {
        outDir: out,
        progress: silent(),
        report: false,
      },
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
