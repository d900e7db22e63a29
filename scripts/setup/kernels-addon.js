'use strict';
/**
 * Builds our own TensorFlow ops (src/kernels/native/addon/: `AntifragileConvPool`) into a
 * Node-API module beside tfjs-node's addon, linked against the same TensorFlow library. Loading
 * the module registers the ops with TensorFlow; tfjs-node's binding then runs them like any op.
 *
 * Optional: a machine without a C++ compiler gets a warning, and the analysis runs the same
 * computation with TensorFlow's own ops (slower, same values). Idempotent: a stamp beside the
 * module records the sources' hash; built modules are cached like tfjs-node's addon.
 */
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const cp = require('child_process');

const SOURCES = path.join(__dirname, '..', '..', 'src', 'kernels', 'native', 'addon');
const MODULE = 'antifragile_kernels.node';

function log(message) {
  console.log(`[setup:kernels] ${message}`);
}

function sourceHash() {
  const hash = crypto.createHash('sha256');
  for (const name of fs.readdirSync(SOURCES).sort()) {
    hash.update(name);
    hash.update(fs.readFileSync(path.join(SOURCES, name)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** Whether the module at `target` loads after tfjs-node and registers its ops. */
function verify(tfjsNodeDir, target) {
  const code = `
    require(${JSON.stringify(tfjsNodeDir)});
    const m = require(${JSON.stringify(target)});
    if (m.registrationError) { console.error(m.registrationError); process.exit(3); }`;
  const r = cp.spawnSync(process.execPath, ['-e', code], {
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  return { ok: r.status === 0, stderr: r.stderr };
}

function build(tfjsNodeDir, gyp, headers) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'antifragile-kernels-'));
  try {
    for (const name of fs.readdirSync(SOURCES)) {
      fs.copyFileSync(path.join(SOURCES, name), path.join(dir, name));
    }
    const args = [gyp, 'rebuild', '--loglevel=error'];
    if (headers) args.push(`--nodedir=${headers}`);
    args.push('--', `-Dtfjs_node_dir=${tfjsNodeDir}`);
    const r = cp.spawnSync(process.execPath, args, {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (r.status !== 0) {
      throw new Error(`node-gyp exited with status ${r.status}: ${String(r.stderr).slice(-2000)}`);
    }
    return fs.readFileSync(path.join(dir, 'build', 'Release', MODULE));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Puts the ops module in `<tfjs-node>/lib/napi-v<napi>/`; returns whether it is in place.
 * `cacheDir` keeps built modules; `gyp` and `headers` as for tfjs-node's addon.
 */
function setupKernelsAddon({ tfjsNodeDir, napi, cacheDir, gyp, headers, key }) {
  const target = path.join(tfjsNodeDir, 'lib', `napi-v${napi}`, MODULE);
  const stampPath = `${target}.json`;
  const wanted = JSON.stringify({ key, sources: sourceHash() });
  if (fs.existsSync(target) && fs.existsSync(stampPath)) {
    if (fs.readFileSync(stampPath, 'utf8') === wanted && verify(tfjsNodeDir, target).ok) {
      return true;
    }
  }
  const cached = path.join(cacheDir, `${key}-kernels${JSON.parse(wanted).sources}`, MODULE);
  try {
    if (fs.existsSync(cached)) {
      fs.copyFileSync(cached, target);
    } else {
      log('compiling our TensorFlow ops (src/kernels/native/addon)');
      fs.writeFileSync(target, build(tfjsNodeDir, gyp, headers));
    }
    const check = verify(tfjsNodeDir, target);
    if (!check.ok) throw new Error(`the ops module does not load:\n${check.stderr}`);
    fs.writeFileSync(stampPath, wanted);
    try {
      fs.mkdirSync(path.dirname(cached), { recursive: true });
      if (!fs.existsSync(cached)) fs.copyFileSync(target, cached);
      // Modules built from earlier sources for the same TensorFlow and Node are stale.
      for (const entry of fs.readdirSync(cacheDir)) {
        const dir = path.join(cacheDir, entry);
        if (entry.startsWith(`${key}-kernels`) && dir !== path.dirname(cached)) {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    } catch (err) {
      log(`note: could not cache the ops module in ${cached}: ${err.message}`);
    }
    log(`ready (${path.relative(process.cwd(), target)})`);
    return true;
  } catch (err) {
    fs.rmSync(target, { force: true });
    fs.rmSync(stampPath, { force: true });
    log(
      `warning: our TensorFlow ops were not built (${err.message.split('\n')[0]}); ` +
        'the analysis runs the same computation with TensorFlow’s own ops, more slowly',
    );
    return false;
  }
}

module.exports = { setupKernelsAddon, KERNELS_MODULE: MODULE };
