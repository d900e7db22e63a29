/**
 * Every shipped recipe (recipes/*.json and recipes/reproduce/*.json) run end to end through the
 * CLI, made tiny with --set (one epoch, width 0.25, K = 3, one analysed weight, a few examples),
 * on small dataset folders in the real file formats for the recipes that read `dataset.dir`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { main, type CliIo } from '../cli/main';
import { buildModel, type ModelName } from '../src/models';
import { tempRuns } from './recipes-helpers';
import { writeCifar, writeMnist, writeTinyImageNet } from './support/dataset-files';
import { itIf } from './support/skip';

const RECIPES = path.join(__dirname, '..', 'recipes');
// Tiny ImageNet's JPEGs need TensorFlow's native library (to write them and to read them).
const native = !process.env.TFJS_BACKEND || process.env.TFJS_BACKEND.startsWith('tensorflow');

interface ShippedRecipe {
  name: string;
  model: { architecture: ModelName };
  dataset: { name: string; dir?: string; validationSize?: number };
  retraining?: { enabled?: boolean; arms?: string[] };
}

const shipped = [
  ...fs.readdirSync(RECIPES).map((f) => path.join(RECIPES, f)),
  ...fs.readdirSync(path.join(RECIPES, 'reproduce')).map((f) => path.join(RECIPES, 'reproduce', f)),
]
  .filter((f) => f.endsWith('.json') && path.basename(f) !== 'schema.json')
  .map((file) => ({ file, recipe: JSON.parse(fs.readFileSync(file, 'utf8')) as ShippedRecipe }));

/** The shape each dataset folder below has: input shape and classes. */
const SHAPES: Record<string, { inputShape: number[]; classes: number }> = {
  mnist: { inputShape: [28, 28, 1], classes: 10 },
  cifar10: { inputShape: [32, 32, 3], classes: 10 },
  'tiny-imagenet': { inputShape: [64, 64, 3], classes: 3 },
};

/** The first kernel of an architecture, by its stable name (one weight keeps the analysis quick). */
function firstKernel(architecture: ModelName, dataset: string): string {
  const { inputShape, classes } = SHAPES[dataset];
  const model = buildModel(architecture, {
    inputShape: inputShape as [number, number, number],
    classes,
    width: architecture === 'small_cnn' ? 1 : 0.25,
    seed: 0,
  });
  const name = model.weights.find((w) => w.originalName.endsWith('kernel'))?.originalName;
  model.dispose();
  if (!name) throw new Error(`${architecture} has no kernel`);
  return name;
}

function quietIo(): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const sink = { write: () => true } as unknown as NodeJS.WritableStream;
  return {
    io: { out: (t) => out.push(t), err: (t) => err.push(t), progressStream: sink, tty: false },
    out,
    err,
  };
}

describe('every shipped recipe runs end to end, tiny, on real-format files', () => {
  const root = tempRuns('recipes-datasets');
  const dirs: Record<string, string> = {
    mnist: path.join(root, 'mnist'),
    cifar10: path.join(root, 'cifar-10-batches-bin'),
    'tiny-imagenet': path.join(root, 'tiny-imagenet-200'),
  };
  beforeAll(async () => {
    for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true });
    writeMnist(dirs.mnist, true, 16, 6);
    writeCifar(dirs.cifar10);
    if (native) await writeTinyImageNet(dirs['tiny-imagenet']);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('finds the paper recipes for every dataset', () => {
    const withDir = shipped.filter((s) => s.recipe.dataset.dir !== undefined);
    expect(new Set(withDir.map((s) => s.recipe.dataset.name))).toEqual(
      new Set(['mnist', 'cifar10', 'tiny-imagenet']),
    );
    expect(shipped.length).toBeGreaterThanOrEqual(13);
  });

  for (const { file, recipe } of shipped) {
    const { dataset, model } = recipe;
    const skip = dataset.name === 'tiny-imagenet' && !native;
    itIf(
      !skip,
      `TFJS_BACKEND=${process.env.TFJS_BACKEND}: Tiny ImageNet JPEGs need the native backend`,
    )(path.relative(RECIPES, file), async () => {
      const sets = [
        'training.epochs=1',
        'training.batchSize=8',
        'analysis.steps=3',
        'analysis.examples=4',
        'analysis.batchSize=8',
        'analysis.every=1',
        'analysis.filters=["lowpass"]',
        `analysis.parameters=${JSON.stringify([firstKernel(model.architecture, dataset.name)])}`,
        'retraining.epochs=1',
        'retraining.seeds=[0]',
        'tracking.mlflow.enabled=false',
      ];
      if (model.architecture !== 'small_cnn') sets.push('model.width=0.25');
      if (dataset.dir !== undefined) sets.push(`dataset.dir=${dirs[dataset.name]}`);
      else sets.push('dataset.trainSize=24', 'dataset.testSize=8');
      if (dataset.validationSize !== undefined) sets.push('dataset.validationSize=4');
      // reproduce/resnet18-mnist.json and resnet18-mnist.json must not share a folder.
      const out = path.join(root, 'runs', path.relative(RECIPES, file).split(path.sep).join('__'));
      const c = quietIo();
      const args = ['run', file, '--out', out, '--no-report', ...sets.flatMap((s) => ['--set', s])];
      const code = await main(args, c.io);
      expect(c.err.join('\n')).toBe('');
      expect(code).toBe(0);
      const runDir = path.join(out, fs.readdirSync(out)[0]);
      const info = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
      expect(info.status).toBe('finished');
      const rows = JSON.parse(fs.readFileSync(path.join(runDir, 'metrics.json'), 'utf8'));
      const arms = recipe.retraining?.enabled
        ? (recipe.retraining.arms ?? ['normal', 'selective'])
        : [];
      expect(rows.map((r: { phase: string }) => r.phase)).toEqual([
        'train',
        ...arms.map((arm) => `${arm}-s0`),
      ]);
      for (const row of rows) expect(Number.isFinite(row.test_acc)).toBe(true);
      const report = JSON.parse(
        fs.readFileSync(path.join(runDir, 'analysis', 'train', 'epoch-001.json'), 'utf8'),
      );
      expect(report.parameters).toHaveLength(1);
      expect(report.examples).toBe(4);
    });
  }
});
