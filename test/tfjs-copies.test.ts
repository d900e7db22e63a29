/**
 * Two copies of tfjs in one process (what a linked folder or a second install gives a user) are
 * a TfjsCopiesError that names both copies and the fix, not a TypeError deep inside `fit`. A
 * second copy of tfjs-core and tfjs-layers (their single-file Node bundles) is put in a temporary
 * folder and loaded next to the project's; the checks run in a child process, where Node's
 * `require.cache` lists the loaded files (jest's module registry does not).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { projectPath, runNodeScript } from './support/child-script';

const ROOT = path.resolve(__dirname, '..');

/** Copies tfjs-core and tfjs-layers (package.json + Node bundle) under `dir`/node_modules. */
function secondTfjs(dir: string): string {
  for (const [pkg, bundle] of [
    ['tfjs-core', 'tf-core.node.js'],
    ['tfjs-layers', 'tf-layers.node.js'],
  ]) {
    const from = path.join(ROOT, 'node_modules', '@tensorflow', pkg);
    const to = path.join(dir, 'node_modules', '@tensorflow', pkg);
    fs.mkdirSync(path.join(to, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(from, 'package.json'), path.join(to, 'package.json'));
    fs.copyFileSync(path.join(from, 'dist', bundle), path.join(to, 'dist', bundle));
  }
  return path.join(dir, 'node_modules', '@tensorflow', 'tfjs-layers');
}

describe('two copies of tfjs', () => {
  let dir: string;
  let result: { code: number | null; out: string };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-copies-'));
    const other = secondTfjs(dir);
    // Each case prints one JSON line: its name and the error it got (name and message).
    result = await runNodeScript(`
      const tf = require('@tensorflow/tfjs');
      const { initBackend } = require(${projectPath('src/kernels/backend.ts')});
      const { SynapticFilterCallback } = require(${projectPath('callbacks/synaptic-filter-callback.ts')});
      const { analyze } = require(${projectPath('src/analysis/analyze.ts')});
      const ours = () => {
        const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], activation: 'softmax' })] });
        m.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
        return m;
      };
      const run = async (name, fn) => {
        try { await fn(); console.log(JSON.stringify({ name, error: null })); }
        catch (e) { console.log(JSON.stringify({ name, error: { name: e.name, message: e.message } })); }
      };
      const data = { xs: tf.ones([4, 3]), ys: tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2) };
      const callback = () => new SynapticFilterCallback({ data, epsilon: 0.1, steps: 3 });
      (async () => {
        await run('one copy: initBackend', () => initBackend({ backend: 'cpu', log: () => {} }));
        await run('one copy: fit', () => ours().fit(data.xs, data.ys, { epochs: 1, callbacks: [callback()] }));
        const tfl = require(${JSON.stringify(other)});
        const theirs = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, inputShape: [3], activation: 'softmax', name: 'theirs' })] });
        theirs.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
        await run('initBackend', () => initBackend({ backend: 'cpu', log: () => {} }));
        await run('fit wraps our callback', () => theirs.fit(data.xs, data.ys, { epochs: 1, callbacks: [callback()] }));
        await run('fit with their callback first', () => theirs.fit(data.xs, data.ys, {
          epochs: 1, callbacks: [tfl.callbacks.earlyStopping({ monitor: 'loss' }), callback()] }));
        await run('analyze', () => analyze(theirs, data, { epsilon: 0.1, steps: 3 }));
      })();
    `);
  }, 120_000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const outcome = (name: string) => {
    const line = result.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map(
        (l) => JSON.parse(l) as { name: string; error: { name: string; message: string } | null },
      )
      .find((o) => o.name === name);
    if (!line) throw new Error(`case '${name}' printed nothing; child output:\n${result.out}`);
    return line.error;
  };
  const ourCore = fs.realpathSync(path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-core'));

  it('with one copy, initBackend and a fit with our callback work', () => {
    expect(result.code).toBe(0);
    expect(outcome('one copy: initBackend')).toBeNull();
    expect(outcome('one copy: fit')).toBeNull();
  });

  it.each([
    ['initBackend', 'two copies of tfjs are loaded'],
    ['fit wraps our callback', 'model.fit did not recognise this callback'],
    ['fit with their callback first', 'the model is not a tf.LayersModel'],
    ['analyze', 'the model is not a tf.LayersModel'],
  ])('%s: a TfjsCopiesError naming both copies and the fix', (name, what) => {
    const error = outcome(name);
    expect(error?.name).toBe('TfjsCopiesError');
    expect(error?.message).toContain(what);
    expect(error?.message).toContain(ourCore);
    expect(error?.message).toContain(path.join(dir, 'node_modules', '@tensorflow', 'tfjs-core'));
    expect(error?.message).toContain('npm dedupe');
  });
});
