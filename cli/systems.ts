/** The systems of `recipes/reproduce/` that `npm run reproduce` (and its sensitivity study) run. */
import * as fs from 'fs';
import * as path from 'path';

/** Systems run when neither --systems nor --recipes is given (the default recipe's and ResNet-18). */
export const DEFAULT_SYSTEMS = ['small_cnn', 'resnet18'];

/** The systems of `recipes/reproduce/`, by the short name `--systems` takes. */
export const SYSTEMS: Record<string, string> = {
  small_cnn: 'small-cnn-mnist.json',
  resnet18: 'resnet18-mnist.json',
  shufflenet_v2: 'shufflenet-v2-mnist.json',
  squeezenet1_1: 'squeezenet1-1-mnist.json',
};

/** `--quick`: a smoke run of the whole protocol in a few minutes. */
export const QUICK = [
  'dataset.trainSize=1000',
  'dataset.validationSize=100',
  'dataset.testSize=300',
  'analysis.examples=100',
  'analysis.steps=5',
  'training.epochs=1',
  'analysis.every=1',
  'retraining.epochs=1',
];

/**
 * The recipe files of some systems (a comma-separated list of {@link SYSTEMS} names), relative to
 * the working directory; throws naming the unknown ones.
 */
export function systemRecipes(list: string): string[] {
  const names = list.split(',').filter(Boolean);
  const unknown = names.filter((n) => !SYSTEMS[n]);
  if (unknown.length) {
    throw new Error(
      `--systems: unknown ${unknown.join(', ')}; use ${Object.keys(SYSTEMS).join(', ')}`,
    );
  }
  // From dist/cli/ once compiled: the JSON recipes stay in the source tree.
  const folder = [
    path.join(__dirname, '..', 'recipes', 'reproduce'),
    path.join(__dirname, '..', '..', 'recipes', 'reproduce'),
  ].find((d) => fs.existsSync(path.join(d, SYSTEMS.small_cnn)));
  if (!folder) throw new Error(`recipes/reproduce/ not found from ${__dirname}`);
  return names.map((n) => path.relative(process.cwd(), path.join(folder, SYSTEMS[n])));
}
