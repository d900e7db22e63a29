/**
 * One copy of tfjs per process. tfjs-antifragile takes `@tensorflow/tfjs` as a peer dependency,
 * so it uses the user's copy; when a project ends up with two (a linked folder that brings its
 * own `node_modules`, two versions), `model.fit` of one copy does not recognise our callbacks
 * (built on the other copy's `tf.Callback`) and wraps them as plain objects, and our
 * `instanceof tf.LayersModel` checks fail on its models. These checks turn that into one clear
 * error that names the copies and the fix. Browser-safe: without Node's `require.cache` the list
 * of loaded copies is empty and only the object checks apply.
 */
import * as tf from '@tensorflow/tfjs';

/** The tfjs packages whose duplication breaks `fit` and `instanceof` checks. */
const WATCHED = ['tfjs-core', 'tfjs-layers'] as const;

const FIX =
  'tfjs-antifragile takes @tensorflow/tfjs as a peer dependency and must use the same copy as your ' +
  "code: install @tensorflow/tfjs once, in your project (same version as tfjs-antifragile's peer), " +
  "then run 'npm dedupe'; if tfjs-antifragile is linked from a folder (npm install <folder>, " +
  'npm link), install its packed tarball (npm pack) instead, since the folder brings its own node_modules.';

/** Two (or more) copies of tfjs are in use in one process. */
export class TfjsCopiesError extends Error {
  constructor(
    message: string,
    /** The package folders of every tfjs-core / tfjs-layers copy loaded (Node only). */
    readonly copies: string[],
  ) {
    super(message);
    this.name = 'TfjsCopiesError';
  }
}

/** The package folders of each copy of tfjs-core and tfjs-layers loaded so far (Node only). */
export function loadedTfjsCopies(): Record<(typeof WATCHED)[number], string[]> {
  const found = { 'tfjs-core': new Set<string>(), 'tfjs-layers': new Set<string>() };
  const cache = typeof require === 'function' ? require.cache : undefined;
  const pattern = /^(.*[\\/]@tensorflow[\\/](tfjs-core|tfjs-layers))[\\/]/;
  for (const file of Object.keys(cache ?? {})) {
    const m = pattern.exec(file);
    if (m) found[m[2] as (typeof WATCHED)[number]].add(m[1]);
  }
  return { 'tfjs-core': [...found['tfjs-core']], 'tfjs-layers': [...found['tfjs-layers']] };
}

function copiesText(copies: string[]): string {
  return copies.length > 0 ? ` Loaded copies: ${copies.join(', ')}.` : '';
}

function allCopies(): string[] {
  const loaded = loadedTfjsCopies();
  return WATCHED.flatMap((name) => loaded[name]);
}

/**
 * Throws {@link TfjsCopiesError} when more than one copy of tfjs-core or tfjs-layers is loaded
 * in this process (Node; a no-op where modules are not cached by path).
 */
export function assertOneTfjs(where: string): void {
  const loaded = loadedTfjsCopies();
  const duplicated = WATCHED.filter((name) => loaded[name].length > 1);
  if (duplicated.length === 0) return;
  const paths = duplicated.flatMap((name) => loaded[name]);
  throw new TfjsCopiesError(
    `${where}: two copies of tfjs are loaded (${duplicated.join(', ')}): ${paths.join(' and ')}. ${FIX}`,
    paths,
  );
}

/**
 * The checks a callback makes at `onTrainBegin`: `self` (its `this`) must be an instance of its
 * own class (a `fit` from another tfjs copy wraps foreign callbacks in its own, and calls their
 * methods on the wrapper), and the model must be a `tf.LayersModel` of our tfjs.
 */
export function checkCallbackTfjs(
  where: string,
  self: unknown,
  ownClass: abstract new (...args: never[]) => unknown,
  model: unknown,
): void {
  if (!(self instanceof ownClass)) {
    const copies = allCopies();
    throw new TfjsCopiesError(
      `${where}: model.fit did not recognise this callback as a tfjs callback (it wrapped it as a ` +
        'plain object), so the model comes from another copy of tfjs than the one tfjs-antifragile ' +
        `uses.${copiesText(copies)} ${FIX}`,
      copies,
    );
  }
  checkModelTfjs(where, model);
}

/**
 * Throws {@link TfjsCopiesError} when `model` looks like a tfjs model (it has `layers`) but is not
 * a `tf.LayersModel` of the tfjs this package uses.
 */
export function checkModelTfjs(where: string, model: unknown): void {
  if (model === undefined || model === null || model instanceof tf.LayersModel) return;
  if (!Array.isArray((model as { layers?: unknown }).layers)) return;
  const copies = allCopies();
  throw new TfjsCopiesError(
    `${where}: the model is not a tf.LayersModel of the tfjs that tfjs-antifragile uses; it was ` +
      `built with another copy of tfjs.${copiesText(copies)} ${FIX}`,
    copies,
  );
}
