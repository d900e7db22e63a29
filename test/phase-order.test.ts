/** The report and labels.json list phases in the order they ran, not alphabetically. */
import * as fs from 'fs';
import * as path from 'path';
import { RunFolder, RUN_FILES } from '../src/experiment';
import { tempRuns, tinyRecipe } from './recipes-helpers';

it('analysed phases come in run order: train, then each seed (as listed) and its arms', () => {
  const dir = tempRuns('phase-order');
  const folder = new RunFolder(dir);
  const recipe = tinyRecipe({
    retraining: { enabled: true, epochs: 1, seeds: [6, 5], arms: ['normal', 'selective'] },
  });
  fs.writeFileSync(folder.file(RUN_FILES.recipe), JSON.stringify(recipe));
  for (const phase of ['selective-s5', 'normal-s5', 'train', 'selective-s6', 'normal-s6']) {
    fs.mkdirSync(path.join(dir, RUN_FILES.analysis, phase), { recursive: true });
  }
  expect(folder.analysedPhases()).toEqual([
    'train',
    'normal-s6',
    'selective-s6',
    'normal-s5',
    'selective-s5',
  ]);
});
