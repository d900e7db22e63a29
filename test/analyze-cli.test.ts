/**
 * `tfjs-antifragile analyze` and its API (loadModelFile, loadData) on models saved by real
 * Keras 3 (test/fixtures/make-keras-fixtures.py, run here with the project's .venv): imported
 * predictions equal Keras' own, report.clean equals Keras' accuracy, every bad input is exit 2
 * with nothing written, Ctrl-C is 130 with run.json `killed`, MLflow gets the run.
 */
import * as tf from '@tensorflow/tfjs';
import * as tfnode from '@tensorflow/tfjs-node';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../cli/main';
import { loadData } from '../datasets';
import { loadModelFile } from '../src/experiment/model-file';
import { useMlflowServer } from './support/mlflow-server';
import { captureCli } from './support/cli-io';

const ROOT = path.resolve(__dirname, '..');
const PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
let dir: string;
let fx: (name: string) => string;
let expected: Record<string, { predictions: number[][]; accuracy: number }>;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analyze-cli-'));
  process.env.TFJS_ANTIFRAGILE_CACHE = path.join(dir, 'cache');
  const made = spawnSync(
    PYTHON,
    [path.join(ROOT, 'test/fixtures/make-keras-fixtures.py'), path.join(dir, 'fx')],
    {
      encoding: 'utf8',
      env: { ...process.env, KERAS_BACKEND: 'torch' },
    },
  );
  if (made.status !== 0) {
    throw new Error(
      `the Keras fixtures could not be made (node scripts/setup.js --keras): ${made.stderr}`,
    );
  }
  fx = (name) => path.join(dir, 'fx', name);
  expected = JSON.parse(fs.readFileSync(fx('expected.json'), 'utf8'));
}, 300_000);

afterAll(() => {
  delete process.env.TFJS_ANTIFRAGILE_CACHE;
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('Keras import', () => {
  it.each(['cnn.keras', 'cnn.h5', 'residual.keras', 'residual.h5'])(
    '%s predicts what Keras predicts (1e-4), and the second import comes from the cache',
    async (file) => {
      const loaded = await loadModelFile(fx(file));
      const data = await loadData(`npz:${fx('data.npz')}`);
      const ours = tf.tidy(
        () => (loaded.model.predict(data.xs) as tf.Tensor).arraySync() as number[][],
      );
      const theirs = expected[file.replace(/\..*$/, '')].predictions;
      expect(ours.length).toBe(theirs.length);
      const worst = Math.max(
        ...ours.flatMap((row, i) => row.map((v, j) => Math.abs(v - theirs[i][j]))),
      );
      expect(worst).toBeLessThan(1e-4);
      expect(loaded.output).toBe(file.startsWith('cnn') ? 'probabilities' : 'logits');
      const again = await loadModelFile(fx(file));
      expect(again.cached).toBe(true);
      expect(again.sha256).toBe(loaded.sha256);
      for (const m of [loaded.model, again.model]) m.dispose();
      data.xs.dispose();
      data.ys.dispose();
    },
    300_000,
  );
});

describe('analyze', () => {
  it.each(['cnn.keras', 'cnn.h5'])(
    '%s with --data npz: report.clean equals Keras accuracy; the folder holds every file',
    async (file) => {
      const out = path.join(dir, `runs-${file}`);
      const c = captureCli();
      const args = ['analyze', fx(file), '--data', `npz:${fx('data.npz')}`, '--epsilon', '0.3'];
      const code = await main(
        [...args, '--steps', '3', '--filters', 'lowpass,pulse', '--out', out],
        c.io,
      );
      expect(c.err.join('\n')).toBe('');
      expect(code).toBe(0);
      const runs = fs.readdirSync(out);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatch(/^cnn-\d{8}-\d{6}$/);
      const run = path.join(out, runs[0]);
      expect(fs.readdirSync(run).sort()).toEqual([
        'analysis.json',
        'labels.csv',
        'report.html',
        'run.json',
      ]);
      const report = JSON.parse(fs.readFileSync(path.join(run, 'analysis.json'), 'utf8'));
      expect(report.reference.clean).toBeCloseTo(expected.cnn.accuracy, 10);
      expect(report.options.filters).toEqual(['lowpass', 'pulse']);
      const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
      expect(info.status).toBe('finished');
      expect(info.inputs.modelOutput).toBe('probabilities');
      expect(fs.readFileSync(path.join(run, 'labels.csv'), 'utf8').split('\n')[0]).toMatch(
        /^epoch,parameter/,
      );
      expect(fs.readFileSync(path.join(run, 'report.html'), 'utf8')).toContain('Response curves');
    },
    300_000,
  );

  it('Ctrl-C during the analysis exits 130 with run.json killed', async () => {
    const out = path.join(dir, 'runs-killed');
    let sent = false;
    const c = captureCli((line) => {
      if (!sent && line.startsWith('analyse')) {
        sent = true;
        process.emit('SIGINT');
      }
    });
    const args = ['analyze', fx('residual.keras'), '--data', `npz:${fx('data-onehot.npz')}`];
    expect(await main([...args, '--epsilon', '0.3', '--steps', '5', '--out', out], c.io)).toBe(130);
    const run = path.join(out, fs.readdirSync(out)[0]);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).status).toBe('killed');
    expect(fs.existsSync(path.join(run, 'analysis.json'))).toBe(false);
    expect(process.listenerCount('SIGINT')).toBe(0);
  }, 300_000);
});

describe('tfjs models and other data', () => {
  it('a file:// model.json on an image folder (PNGs, resized, classes sorted)', async () => {
    const images = path.join(dir, 'images');
    for (const [k, cls] of ['b-cats', 'a-dogs'].entries()) {
      fs.mkdirSync(path.join(images, cls), { recursive: true });
      for (let i = 0; i < 3; i++) {
        const img = tf.fill([12, 10, 3], 40 + 100 * k + i, 'int32') as tf.Tensor3D;
        fs.writeFileSync(path.join(images, cls, `${i}.png`), await tfnode.node.encodePng(img));
        img.dispose();
      }
    }
    const modelDir = path.join(dir, 'tfjs-cnn');
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3, activation: 'relu' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    await model.save(`file://${modelDir}`);
    model.dispose();
    const out = path.join(dir, 'runs-images');
    const c = captureCli();
    const args = ['analyze', `file://${modelDir}/model.json`, '--data', `imagefolder:${images}`];
    expect(await main([...args, '--epsilon', '0.1', '--steps', '3', '--out', out], c.io)).toBe(0);
    const run = path.join(out, fs.readdirSync(out)[0]);
    expect(path.basename(run)).toMatch(/^tfjs-cnn-/);
    const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    expect(info.inputs).toMatchObject({
      modelFormat: 'tfjs',
      classes: 2,
      examples: 6,
      labels: 'ids',
    });
    const data = await loadData(`imagefolder:${images}`, { inputShape: [8, 8, 3] });
    expect(data.classNames).toEqual(['a-dogs', 'b-cats']);
    expect(Array.from(data.ys.dataSync())).toEqual([0, 0, 0, 1, 1, 1]);
    expect(data.xs.shape).toEqual([6, 8, 8, 3]);
    expect(data.xs.max().dataSync()[0]).toBeCloseTo(142 / 255, 5);
    data.xs.dispose();
    data.ys.dispose();
  }, 120_000);

  it('loadData: bundled mnist, --examples with --seed, preprocessing per channel', async () => {
    const first = await loadData('mnist', { examples: 5 });
    const sample = await loadData('mnist', { examples: 5, seed: 3 });
    expect(first.xs.shape).toEqual([5, 28, 28, 1]);
    expect(first.preprocessing).toMatch(/0\.1307/);
    expect(Array.from(sample.ys.dataSync())).not.toEqual(Array.from(first.ys.dataSync()));
    const scaled = await loadData(`npz:${fx('data.npz')}`, {
      examples: 2,
      scale: 2,
      mean: [1],
      std: [4],
    });
    const raw = await loadData(`npz:${fx('data.npz')}`, { examples: 2 });
    const want = raw.xs.mul(2).sub(1).div(4);
    expect(scaled.xs.sub(want).abs().max().dataSync()[0]).toBeLessThan(1e-6);
    for (const t of [first, sample, scaled, raw].flatMap((d) => [d.xs, d.ys]).concat(want))
      t.dispose();
  });
});

describe('bad input: exit 2, a clear message, nothing written', () => {
  let tfjsDir: string;
  beforeAll(async () => {
    // A tfjs model without convolution or dense kernels, saved as model.json + weights.
    tfjsDir = path.join(dir, 'no-kernels');
    const model = tf.sequential({
      layers: [tf.layers.activation({ activation: 'softmax', inputShape: [3] })],
    });
    await model.save(`file://${tfjsDir}`);
    model.dispose();
    fs.writeFileSync(path.join(dir, 'corrupt.keras'), 'not a zip');
    fs.writeFileSync(path.join(dir, 'model.onnx'), 'onnx');
    fs.mkdirSync(path.join(dir, 'empty-images', 'a'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'text-images', 'a'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'text-images', 'a', 'notes.txt'), 'hello');
  });

  const cases: Array<[string, () => string[], RegExp]> = [
    [
      'a missing model file',
      () => [path.join(dir, 'missing.keras'), '--data', 'mnist'],
      /missing\.keras does not exist/,
    ],
    [
      'a corrupt model file',
      () => [path.join(dir, 'corrupt.keras'), '--data', `npz:${fx('data.npz')}`],
      /corrupt\.keras cannot be imported from Keras/,
    ],
    [
      'an ONNX file',
      () => [path.join(dir, 'model.onnx'), '--data', 'mnist'],
      /model\.onnx is an ONNX model, which has no layer weights.*\.keras or \.h5/,
    ],
    [
      'data of another shape',
      () => [fx('cnn.keras'), '--data', `npz:${fx('bad-shape.npz')}`],
      /shape \[8, 8, 1\] but .*cnn\.keras expects \[10, 10, 1\]/,
    ],
    [
      'another label count',
      () => [fx('cnn.keras'), '--data', `npz:${fx('bad-labels.npz')}`],
      /has 5 classes .* outputs 3/,
    ],
    [
      'an empty image folder',
      () => [fx('cnn.keras'), '--data', `imagefolder:${path.join(dir, 'empty-images')}`],
      /empty-images is empty/,
    ],
    [
      'a file that is not an image',
      () => [fx('cnn.keras'), '--data', `imagefolder:${path.join(dir, 'text-images')}`],
      /notes\.txt: is not an image/,
    ],
    [
      'no analysable layer',
      () => [path.join(tfjsDir, 'model.json'), '--data', `npz:${fx('vector.npz')}`],
      /matches no weight .*no convolution or dense kernels/,
    ],
    [
      'an option the schema rejects (flag)',
      () => [fx('cnn.keras'), '--data', 'mnist', '--steps', '1'],
      /option 'steps' must be >= 3; got 1/,
    ],
    [
      'an option the schema rejects (--set)',
      () => [fx('cnn.keras'), '--data', 'mnist', '--set', 'analysis.mode=fast'],
      /option 'mode' must be equal to one of the allowed values: one of "layerwise", "global"; got "fast"/,
    ],
    [
      'an unknown option',
      () => [fx('cnn.keras'), '--data', 'mnist', '--set', 'analysis.speed=2'],
      /unknown option 'speed'/,
    ],
    ['an unknown data kind', () => [fx('cnn.keras'), '--data', 'svhn:x'], /unknown kind 'svhn'/],
  ];
  it.each(cases)(
    '%s',
    async (_name, args, message) => {
      const out = path.join(dir, 'rejected');
      const c = captureCli();
      const code = await main(['analyze', ...args(), '--epsilon', '0.3', '--out', out], c.io);
      expect(c.err.join('\n')).toMatch(message);
      expect(code).toBe(2);
      expect(fs.existsSync(out)).toBe(false);
    },
    120_000,
  );

  it("a missing --epsilon is the schema's required option", async () => {
    const c = captureCli();
    expect(await main(['analyze', fx('cnn.keras'), '--data', 'mnist'], c.io)).toBe(2);
    expect(c.err.join('\n')).toMatch(/option 'epsilon' is required/);
  });
});

describe('with MLflow', () => {
  const server = useMlflowServer();
  it('logs params, psi_* metrics, the report files and the model', async () => {
    const out = path.join(dir, 'runs-mlflow');
    const c = captureCli();
    const args = [
      'analyze',
      fx('cnn.keras'),
      '--data',
      `npz:${fx('data.npz')}`,
      '--epsilon',
      '0.3',
    ];
    expect(await main([...args, '--steps', '3', '--filters', 'lowpass', '--out', out], c.io)).toBe(
      0,
    );
    const run = path.join(out, fs.readdirSync(out)[0]);
    const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    const base = `${server().url}/api/2.0/mlflow`;
    const got = (await (await fetch(`${base}/runs/get?run_id=${info.mlflowRun}`)).json()) as {
      run: {
        data: { metrics: Array<{ key: string }>; params: Array<{ key: string; value: string }> };
      };
    };
    const keys = got.run.data.metrics.map((m) => m.key);
    // tfjs numbers weight names apart when a process loads the same model again (conv2d/kernel_1).
    expect(keys.some((k) => /^psi_clean\/lowpass\/conv2d(\/kernel_\d+)?$/.test(k))).toBe(true);
    expect(keys).toContain('analysis/reference_clean');
    expect(got.run.data.params).toContainEqual({ key: 'input.modelFormat', value: 'keras' });
    const listed = (await (
      await fetch(`${base}/artifacts/list?run_id=${info.mlflowRun}`)
    ).json()) as {
      files: Array<{ path: string }>;
    };
    expect(listed.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(['analysis.json', 'labels.csv', 'report.html', 'run.json', 'model']),
    );
  }, 300_000);
});
