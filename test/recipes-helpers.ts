import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { validateRecipe, type Recipe } from '../src/experiment';

/**
 * A recipe small enough for tests (a few seconds): the small CNN on 300 bundled MNIST digits,
 * 2 epochs analysed with one filter and K = 3, then 2 epochs of normal and selective retraining.
 */
export function tinyRecipe(overrides: Record<string, unknown> = {}): Recipe {
  return validateRecipe(
    {
      name: 'tiny',
      model: { architecture: 'small_cnn' },
      dataset: { name: 'mnist', trainSize: 300, validationSize: 60, testSize: 100, seed: 1 },
      training: { batchSize: 50, epochs: 2, seed: 3 },
      analysis: { epsilon: 0.3, steps: 3, filters: ['lowpass'], examples: 60, batchSize: 60 },
      retraining: { enabled: true, epochs: 2, seeds: [5] },
      tracking: { mlflow: { enabled: false } },
      ...overrides,
    },
    'tiny recipe',
  );
}

/** A fresh temporary folder for run folders. */
export function tempRuns(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tfa-${prefix}-`));
}

/**
 * Writes a recipe file small enough for a sweep (`npm run reproduce`) in seconds, with `fields`
 * replacing whole sections; returns its path.
 */
export function writeTinySystem(
  dir: string,
  name: string,
  fields: Record<string, unknown> = {},
): string {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({
      name,
      model: { architecture: 'small_cnn' },
      dataset: { name: 'mnist', trainSize: 100, validationSize: 40, testSize: 40 },
      training: { batchSize: 50, epochs: 1 },
      analysis: { epsilon: 0.3, steps: 3, filters: ['lowpass'], examples: 40 },
      retraining: { enabled: true, epochs: 1 },
      ...fields,
    }),
  );
  return file;
}
