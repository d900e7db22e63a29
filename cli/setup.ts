/**
 * `tfjs-antifragile setup [--native | --wasm]`: installs a fast tfjs backend into the user's
 * project (the nearest folder with a package.json, from the working directory up), where
 * `initBackend()` finds it. `--native` (the default) installs `@tensorflow/tfjs-node` with npm if
 * it is missing (with `--ignore-scripts`: its own install script downloads libtensorflow from a
 * host many machines cannot reach), then runs our native setup (scripts/setup/native.js: the
 * tensorflow-cpu wheel from PyPI, the addon compiled with node-gyp) against that project.
 * `--wasm` installs `@tensorflow/tfjs-backend-wasm`. Both end by checking, in a fresh Node
 * process in the project, that `initBackend()` picks the backend.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** What `setup` installs for each choice, and the backend `initBackend()` must then pick. */
export const SETUP_TARGETS = {
  native: { package: '@tensorflow/tfjs-node', backend: 'tensorflow' },
  wasm: { package: '@tensorflow/tfjs-backend-wasm', backend: 'wasm' },
} as const;

/** One of the keys of {@link SETUP_TARGETS}. */
export type SetupTarget = keyof typeof SETUP_TARGETS;

/** Where `setup` writes. */
export interface SetupIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** The user's project: the nearest folder with a package.json, from `start` up. */
export function findProjectRoot(start: string): string {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(
        `no package.json in ${start} or any folder above it: run 'npx tfjs-antifragile setup' in ` +
          "your project's folder (or 'npm init -y' there first)",
      );
    }
    dir = parent;
  }
}

/** The version of `pkg` that tfjs-antifragile (at `packageRoot`) asks for as a peer. */
function peerVersion(packageRoot: string, pkg: string): string {
  const own = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as {
    peerDependencies?: Record<string, string>;
  };
  const version = own.peerDependencies?.[pkg];
  if (!version) throw new Error(`${pkg} is not a peer dependency in ${packageRoot}/package.json`);
  return version;
}

/** The version of `pkg` installed where `projectRoot` resolves it, if any. */
function installedVersion(projectRoot: string, pkg: string): string | undefined {
  try {
    const file = require.resolve(`${pkg}/package.json`, { paths: [projectRoot] });
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function run(command: string, args: string[], cwd: string, io: SetupIo): void {
  io.out(`[setup] ${path.basename(command)} ${args.join(' ')}   (in ${cwd})`);
  const r = spawnSync(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`'${command} ${args.join(' ')}' in ${cwd} exited with status ${r.status}`);
  }
}

/** Installs `pkg` at our peer version into the project, unless that version is there already. */
function ensurePackage(projectRoot: string, packageRoot: string, pkg: string, io: SetupIo): void {
  const wanted = peerVersion(packageRoot, pkg);
  const found = installedVersion(projectRoot, pkg);
  if (found === wanted) {
    io.out(`[setup] ${pkg}@${found} is installed`);
    return;
  }
  if (found) io.out(`[setup] ${pkg}@${found} found; tfjs-antifragile needs ${wanted}`);
  // Its install script (tfjs-node's downloads libtensorflow) is replaced by our native setup.
  run(
    'npm',
    ['install', `${pkg}@${wanted}`, '--ignore-scripts', '--no-audit', '--no-fund'],
    projectRoot,
    io,
  );
}

/** Loads tfjs-antifragile in a fresh process in the project and returns the backend it picks. */
function chosenBackend(projectRoot: string, packageRoot: string, backend: string): string {
  let entry: string;
  try {
    entry = require.resolve('tfjs-antifragile', { paths: [projectRoot] });
  } catch {
    entry = path.join(packageRoot, 'dist', 'index.js'); // run from this repository itself
  }
  const code =
    `require(${JSON.stringify(entry)}).initBackend({ backend: ${JSON.stringify(backend)}, log: () => {} })` +
    '.then((c) => console.log(c.id), (e) => { console.error(e.message); process.exit(1); });';
  const r = spawnSync(process.execPath, ['-e', code], { cwd: projectRoot, encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`initBackend could not load '${backend}': ${r.stderr.trim()}`);
  return r.stdout.trim().split('\n').pop() ?? '';
}

/** Runs the setup of `target` for the project at `projectRoot`; `packageRoot` is ours. */
export function setupBackend(
  target: SetupTarget,
  projectRoot: string,
  packageRoot: string,
  io: SetupIo,
): void {
  const { package: pkg, backend } = SETUP_TARGETS[target];
  io.out(`[setup] project: ${projectRoot}; backend: ${backend} (${pkg})`);
  ensurePackage(projectRoot, packageRoot, pkg, io);
  if (target === 'native') {
    // Plain JS shipped in the package's scripts/ ("files"), shared with this repo's own setup.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = require(path.join(packageRoot, 'scripts', 'setup', 'native.js')) as {
      setupNative(root: string): boolean;
    };
    if (!native.setupNative(projectRoot)) {
      throw new Error(
        `the native backend was not set up (see the [setup:native] line above); use ` +
          `'npx tfjs-antifragile setup --wasm' instead, or 'npm rebuild ${pkg}' to run its own ` +
          'installer where its download is reachable',
      );
    }
  }
  const chosen = chosenBackend(projectRoot, packageRoot, backend);
  if (chosen !== backend) {
    throw new Error(`after setup, initBackend() chose '${chosen}' instead of '${backend}'`);
  }
  io.out(`[setup] ready: initBackend() picks '${backend}' in ${projectRoot}`);
}
