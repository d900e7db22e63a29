/**
 * The package in someone else's project, as a user gets it: `npm pack` this repository, install
 * the tarball and `@tensorflow/tfjs` into a fresh project (from npm's cache, which `npm ci` here
 * filled), run `npx tfjs-antifragile setup` there (the native backend, installed into that
 * project), then run every TypeScript/JavaScript example of the README, extracted from its code
 * blocks and transpiled as written, on the digits bundled with the package: each must finish,
 * on the `tensorflow` backend, with one copy of tfjs. The MLflow example logs to a real server.
 * Last, `setup --wasm` installs the wasm backend into the same project.
 * Needs dist/ (`npm test` builds it); set KEEP_CONSUMER=1 to keep the temporary project.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { useMlflowServer } from './support/mlflow-server';

const ROOT = path.resolve(__dirname, '..');
const TFJS_VERSION = (
  JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    peerDependencies: Record<string, string>;
  }
).peerDependencies['@tensorflow/tfjs'];

interface Example {
  /** The README section (`## …`) the block is in. */
  section: string;
  source: string;
}

/** Every ```ts / ```js block of the README, with its section heading. */
function readmeExamples(): Example[] {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const examples: Example[] = [];
  let section = '';
  const fence = /^## (.*)$|^```(ts|typescript|js|javascript)\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(fence)) {
    if (m[1] !== undefined) section = m[1];
    else examples.push({ section, source: m[3] });
  }
  return examples;
}

/** The example as an ES module (top-level await and `import` as written). */
function toModule(source: string): string {
  return ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
  }).outputText;
}

/** Runs a command to completion; its exit status and output (stdout then stderr). */
function sh(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 300_000,
): { status: number | null; out: string } {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

/** Package folders named `name` anywhere under `dir`/node_modules. */
function copiesOf(dir: string, name: string): string[] {
  const found: string[] = [];
  const walk = (modules: string) => {
    if (!fs.existsSync(modules)) return;
    for (const entry of fs.readdirSync(modules)) {
      const full = path.join(modules, entry);
      if (entry.startsWith('@')) {
        for (const inner of fs.readdirSync(full))
          visit(path.join(full, inner), `${entry}/${inner}`);
      } else visit(full, entry);
    }
  };
  const visit = (pkgDir: string, pkgName: string) => {
    if (pkgName === name) found.push(pkgDir);
    walk(path.join(pkgDir, 'node_modules'));
  };
  walk(path.join(dir, 'node_modules'));
  return found;
}

describe('the packed package in a fresh project', () => {
  const server = useMlflowServer();
  const examples = readmeExamples();
  let work: string;
  let app: string;
  /** The user's environment: no backend forced, npm from its cache, MLflow at the test server. */
  const userEnv = () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      npm_config_prefer_offline: 'true',
      MLFLOW_TRACKING_URI: server().url,
    };
    delete env.TFJS_BACKEND;
    delete env.MLFLOW_EXPERIMENT_NAME;
    return env;
  };

  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
      throw new Error(`${ROOT}/dist is missing: run 'npm run build' first (npm test does)`);
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-antifragile-consumer-'));
    const pack = sh('npm', ['pack', '--pack-destination', work, '--silent'], ROOT);
    expect(pack.status).toBe(0);
    const tarball = path.join(work, pack.out.trim().split('\n')[0]);
    app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
    );
    const install = sh(
      'npm',
      [
        'install',
        tarball,
        `@tensorflow/tfjs@${TFJS_VERSION}`,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
      ],
      app,
    );
    if (install.status !== 0) throw new Error(`npm install failed:\n${install.out}`);
  }, 300_000);

  afterAll(() => {
    if (work && !process.env.KEEP_CONSUMER) fs.rmSync(work, { recursive: true, force: true });
  });

  it('installs one copy of tfjs-core and tfjs-layers', () => {
    expect(copiesOf(app, '@tensorflow/tfjs-core')).toHaveLength(1);
    expect(copiesOf(app, '@tensorflow/tfjs-layers')).toHaveLength(1);
    expect(copiesOf(app, 'tfjs-antifragile')).toEqual([
      path.join(app, 'node_modules', 'tfjs-antifragile'),
    ]);
  });

  it('npx tfjs-antifragile setup installs the native backend into the project', () => {
    const setup = sh('npx', ['tfjs-antifragile', 'setup'], app, userEnv(), 600_000);
    expect({ status: setup.status, out: setup.out }).toEqual({
      status: 0,
      out: expect.any(String),
    });
    expect(setup.out).toContain(`initBackend() picks 'tensorflow' in ${app}`);
    const tfjsNode = path.join(app, 'node_modules', '@tensorflow', 'tfjs-node');
    const pkg = JSON.parse(fs.readFileSync(path.join(tfjsNode, 'package.json'), 'utf8'));
    expect(pkg.version).toBe(TFJS_VERSION);
    expect(fs.existsSync(path.join(tfjsNode, 'deps', 'lib', 'libtensorflow_cc.so.2'))).toBe(true);
    const project = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8'));
    expect(project.dependencies['@tensorflow/tfjs-node']).toContain(TFJS_VERSION);
    expect(copiesOf(app, '@tensorflow/tfjs-core')).toHaveLength(1);
  }, 600_000);

  it('the README has TypeScript examples to run', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  it.each(examples.map((e, i) => [i + 1, e.section, e] as const))(
    'README example %i (%s) runs as written, on tensorflow',
    (i, _section, example) => {
      const file = path.join(app, `readme-example-${i}.mjs`);
      fs.writeFileSync(file, toModule(example.source));
      const run = sh(process.execPath, [file], app, userEnv());
      if (run.status !== 0) throw new Error(`example ${i} exited with ${run.status}:\n${run.out}`);
      expect(run.out).toMatch(/\[tfjs-antifragile\] backend: tensorflow \(/);
      expect(run.out).not.toMatch(/already registered|TfjsCopiesError/);
    },
    180_000,
  );

  it('npx tfjs-antifragile setup --wasm installs the wasm backend into the project', () => {
    const setup = sh('npx', ['tfjs-antifragile', 'setup', '--wasm'], app, userEnv());
    expect({ status: setup.status, out: setup.out }).toEqual({
      status: 0,
      out: expect.any(String),
    });
    expect(setup.out).toContain(`initBackend() picks 'wasm' in ${app}`);
    const wasm = path.join(app, 'node_modules', '@tensorflow', 'tfjs-backend-wasm');
    expect(JSON.parse(fs.readFileSync(path.join(wasm, 'package.json'), 'utf8')).version).toBe(
      TFJS_VERSION,
    );
    const project = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8'));
    expect(project.dependencies['@tensorflow/tfjs-backend-wasm']).toContain(TFJS_VERSION);
    expect(copiesOf(app, '@tensorflow/tfjs-core')).toHaveLength(1);
  }, 300_000);

  it('the MLflow example logged a finished run with metrics', async () => {
    expect(examples.some((e) => e.source.includes('MlflowCallback'))).toBe(true);
    const api = `${server().url}/api/2.0/mlflow`;
    const byName = await fetch(`${api}/experiments/get-by-name?experiment_name=mnist`);
    const experiment = (await byName.json()) as { experiment: { experiment_id: string } };
    const search = await fetch(`${api}/runs/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ experiment_ids: [experiment.experiment.experiment_id] }),
    });
    const { runs } = (await search.json()) as {
      runs: {
        info: { status: string; run_name: string };
        data: { metrics?: { key: string }[] };
      }[];
    };
    expect(runs.map((r) => [r.info.run_name, r.info.status])).toEqual([['cnn', 'FINISHED']]);
    const keys = (runs[0].data.metrics ?? []).map((m) => m.key);
    expect(keys).toEqual(expect.arrayContaining(['loss', 'acc', 'fragile_adversarial']));
  });
});
