'use strict';
/**
 * Puts TensorFlow's native library under @tensorflow/tfjs-node and builds its addon,
 * without the download that tfjs-node's own install script makes.
 *
 * Route: the PyPI wheel `tensorflow-cpu` ships TensorFlow's shared libraries and the C API
 * headers. We fetch the wheel with pip (a registry this machine reaches), extract only what
 * the addon needs into `node_modules/@tensorflow/tfjs-node/deps/`, and compile the addon with
 * the node-gyp that npm bundles, against the headers of the running Node.js.
 *
 * Before compiling, `./binding-patch.js` lets the addon take list-of-strings and list-of-types
 * attributes (for TensorFlow's fused kernels, src/kernels/native/fused-ops.ts).
 *
 * Idempotent: a stamp file records what was installed; a second run only verifies. The built
 * addon is kept in the same cache, keyed by everything it depends on (TensorFlow, tfjs-node,
 * Node-API and Node ABI versions), so another project's setup (`npx tfjs-antifragile setup`)
 * reuses it instead of compiling again; a cached addon that does not load is rebuilt.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const cp = require('child_process');
const { patchBinding, BINDING_PATCH } = require('./binding-patch');
const { setupKernelsAddon } = require('./kernels-addon');

/** TensorFlow release whose C library we link. 2.12 is the oldest wheel on PyPI that ships
 * the C API in a library free of Python symbols (`libtensorflow_cc.so.2`); tfjs-node 4.22 was
 * written against 2.9's C API, which 2.12 keeps. */
const TENSORFLOW_VERSION = '2.12.1';
const TFJS_NODE_VERSION = '4.22.0';
const STAMP_NAME = '.tfjs-antifragile-native.json';

function log(message) {
  console.log(`[setup:native] ${message}`);
}

function run(command, args, options = {}) {
  const result = cp.spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`'${command} ${args.join(' ')}' exited with status ${result.status}`);
  }
}

function findTfjsNode(root) {
  try {
    const pkgJson = require.resolve('@tensorflow/tfjs-node/package.json', { paths: [root] });
    return path.dirname(pkgJson);
  } catch {
    return undefined;
  }
}

function napiBuildVersion(pkg) {
  const supported = Number(process.versions.napi);
  const candidates = pkg.binary.napi_versions.filter((v) => v <= supported);
  if (candidates.length === 0) {
    throw new Error(`Node-API ${supported} is older than every version tfjs-node supports`);
  }
  return Math.max(...candidates);
}

function cacheRoot() {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'tfjs-antifragile');
}

function cacheDir() {
  return path.join(cacheRoot(), `tensorflow-cpu-${TENSORFLOW_VERSION}`);
}

/** Where a built addon for `wanted` (the stamp's contents) is kept. */
function addonCachePath(wanted) {
  const key =
    `tf${wanted.tensorflow}-tfjs-node${wanted.tfjsNode}-napi${wanted.napi}-abi${wanted.node}` +
    `-patch${wanted.bindingPatch}`;
  return path.join(cacheRoot(), 'addon', key, 'tfjs_binding.node');
}

function python() {
  for (const candidate of [process.env.PYTHON, 'python3', 'python']) {
    if (!candidate) continue;
    const r = cp.spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return candidate;
  }
  throw new Error(
    'Python with pip is needed to fetch the tensorflow-cpu wheel; none was found (set PYTHON)',
  );
}

function downloadWheel(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const existing = fs.readdirSync(dir).find((f) => f.endsWith('.whl'));
  if (existing) return path.join(dir, existing);
  log(`downloading tensorflow-cpu ${TENSORFLOW_VERSION} from PyPI (about 250 MB, once)`);
  // The wheel is only unpacked, never imported: pin the platform and Python tags so that
  // the host's own Python version does not matter.
  run(python(), [
    '-m',
    'pip',
    'download',
    '--no-deps',
    '--only-binary=:all:',
    '--disable-pip-version-check',
    '--python-version',
    '3.11',
    '--implementation',
    'cp',
    '--platform',
    'manylinux2014_x86_64',
    '--platform',
    'manylinux_2_17_x86_64',
    `tensorflow-cpu==${TENSORFLOW_VERSION}`,
    '-d',
    dir,
  ]);
  const wheel = fs.readdirSync(dir).find((f) => f.endsWith('.whl'));
  if (!wheel) throw new Error(`pip reported success but left no wheel in ${dir}`);
  return path.join(dir, wheel);
}

/** Extracts the two libraries and the C API headers (plus the few headers they include). */
function extractWheel(wheel, depsDir) {
  const script = `
import sys, zipfile, os, shutil
wheel, deps = sys.argv[1], sys.argv[2]
lib = os.path.join(deps, 'lib'); inc = os.path.join(deps, 'include')
os.makedirs(lib, exist_ok=True); os.makedirs(inc, exist_ok=True)
wanted_libs = {'tensorflow/libtensorflow_cc.so.2': 'libtensorflow_cc.so.2',
               'tensorflow/libtensorflow_framework.so.2': 'libtensorflow_framework.so.2'}
prefixes = ('tensorflow/include/tensorflow/c/', 'tensorflow/include/tensorflow/tsl/c/',
            'tensorflow/include/tensorflow/core/platform/ctstring',
            'tensorflow/include/tensorflow/tsl/platform/ctstring',
            'tensorflow/include/tensorflow/tsl/platform/macros.h')
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name in wanted_libs:
            target = os.path.join(lib, wanted_libs[name])
        elif name.startswith(prefixes) and not name.endswith('/'):
            target = os.path.join(inc, name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, 'wb') as dst:
            shutil.copyfileobj(src, dst)
        if target.endswith('.so.2'):
            os.chmod(target, 0o755)
`;
  run(python(), ['-c', script, wheel, depsDir]);
  const lib = path.join(depsDir, 'lib');
  // tfjs-node links -ltensorflow -ltensorflow_framework and its installer looks for
  // libtensorflow.so.2; the addon then records the SONAME libtensorflow_cc.so.2.
  for (const [link, target] of [
    ['libtensorflow.so.2', 'libtensorflow_cc.so.2'],
    ['libtensorflow.so', 'libtensorflow_cc.so.2'],
    ['libtensorflow_framework.so', 'libtensorflow_framework.so.2'],
  ]) {
    const p = path.join(lib, link);
    fs.rmSync(p, { force: true });
    fs.symlinkSync(target, p);
  }
}

function nodeGypScript() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(
      path.dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    /* not installed locally */
  }
  const found = candidates.find((c) => c && fs.existsSync(c));
  if (!found)
    throw new Error(
      'node-gyp was not found (it ships with npm); install it with `npm i -g node-gyp`',
    );
  return found;
}

function nodeHeadersDir() {
  // node-gyp downloads headers unless told where they are; the running Node's own headers
  // (include/node next to bin/node) avoid that download.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) return prefix;
  return undefined;
}

function buildAddon(tfjsNodeDir, napi) {
  const args = [nodeGypScript(), 'rebuild', '--loglevel=error'];
  const headers = nodeHeadersDir();
  if (headers) args.push(`--nodedir=${headers}`);
  args.push(
    '--',
    `-Dnapi_build_version=${napi}`,
    '-Dmodule_name=tfjs_binding',
    `-Dmodule_path=lib/napi-v${napi}`,
    `-Dmodule_root_dir=${tfjsNodeDir}`,
  );
  log('compiling the tfjs-node addon against TensorFlow ' + TENSORFLOW_VERSION);
  run(process.execPath, args, { cwd: tfjsNodeDir, stdio: ['ignore', 'ignore', 'inherit'] });
}

function verify(tfjsNodeDir) {
  const code = `
    const tf = require(${JSON.stringify(tfjsNodeDir)});
    const s = tf.tensor([1, 2, 3]).square().sum().dataSync()[0];
    if (tf.getBackend() !== 'tensorflow' || s !== 14) process.exit(3);`;
  const r = cp.spawnSync(process.execPath, ['-e', code], {
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  return { ok: r.status === 0, stderr: r.stderr };
}

/** Copies a cached addon built for `wanted` into place; true if it is there and loads. */
function reuseCachedAddon(tfjsNodeDir, binding, wanted) {
  const cached = addonCachePath(wanted);
  if (!fs.existsSync(cached)) return false;
  fs.mkdirSync(path.dirname(binding), { recursive: true });
  fs.copyFileSync(cached, binding);
  if (verify(tfjsNodeDir).ok) {
    log(`reused the addon built earlier (${cached})`);
    return true;
  }
  log(`the cached addon ${cached} does not load here; compiling instead`);
  fs.rmSync(cached, { force: true });
  return false;
}

/** Keeps a built addon for other projects' setup (best effort: a cache failure is no error). */
function keepAddon(binding, wanted) {
  const cached = addonCachePath(wanted);
  try {
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    fs.copyFileSync(binding, `${cached}.tmp`);
    fs.renameSync(`${cached}.tmp`, cached);
  } catch (err) {
    log(`note: could not cache the addon in ${cached}: ${err.message}`);
  }
}

/** Our own TensorFlow ops, beside the addon and cached with it (./kernels-addon.js). */
function setupOps(tfjsNodeDir, wanted) {
  const key = path.basename(path.dirname(addonCachePath(wanted)));
  setupKernelsAddon({
    tfjsNodeDir,
    napi: wanted.napi,
    cacheDir: path.join(cacheRoot(), 'addon'),
    gyp: nodeGypScript(),
    headers: nodeHeadersDir(),
    key,
  });
}

function setupNative(root) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    log(
      `skipped: the PyPI route is for linux-x64 (this is ${process.platform}-${process.arch}); ` +
        'tfjs-node installs its own library on platforms its download reaches',
    );
    return false;
  }
  const dir = findTfjsNode(root);
  if (!dir) {
    log(
      'skipped: @tensorflow/tfjs-node is not installed (optional); the wasm or cpu backend will be used',
    );
    return false;
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (pkg.version !== TFJS_NODE_VERSION) {
    log(`warning: tfjs-node ${pkg.version} found; this step was tested with ${TFJS_NODE_VERSION}`);
  }
  const napi = napiBuildVersion(pkg);
  const stampPath = path.join(dir, 'deps', STAMP_NAME);
  const wanted = {
    tensorflow: TENSORFLOW_VERSION,
    tfjsNode: pkg.version,
    napi,
    node: process.versions.modules,
    bindingPatch: BINDING_PATCH,
  };
  const binding = path.join(dir, 'lib', `napi-v${napi}`, 'tfjs_binding.node');
  if (fs.existsSync(stampPath) && fs.existsSync(binding)) {
    const stamp = JSON.parse(fs.readFileSync(stampPath, 'utf8'));
    if (JSON.stringify(stamp) === JSON.stringify(wanted) && verify(dir).ok) {
      if (!fs.existsSync(addonCachePath(wanted))) keepAddon(binding, wanted);
      log(`ready (TensorFlow ${TENSORFLOW_VERSION}, ${path.relative(root, binding)})`);
      setupOps(dir, wanted);
      return true;
    }
  }
  const depsDir = path.join(dir, 'deps');
  fs.rmSync(depsDir, { recursive: true, force: true });
  extractWheel(downloadWheel(cacheDir()), depsDir);
  if (!reuseCachedAddon(dir, binding, wanted)) {
    patchBinding(dir);
    buildAddon(dir, napi);
    const check = verify(dir);
    if (!check.ok) {
      throw new Error(`the native backend was built but does not load:\n${check.stderr}`);
    }
    keepAddon(binding, wanted);
  }
  fs.writeFileSync(stampPath, JSON.stringify(wanted));
  log(
    `installed TensorFlow ${TENSORFLOW_VERSION} for tfjs-node ${pkg.version} (${path.relative(root, binding)})`,
  );
  setupOps(dir, wanted);
  return true;
}

module.exports = { setupNative, TENSORFLOW_VERSION };
