'use strict';
/**
 * The project's Python virtual environment (`.venv/`): the MLflow tracking server that the
 * tests start, PyTorch, the speed yardstick of `npm run bench`, and Keras 3 on PyTorch, which
 * imports `.keras`/`.h5` models for `analyze` and makes the Keras test fixtures. Idempotent: each
 * requirement set is installed once and recorded in a stamp file.
 */
const fs = require('fs');
const path = require('path');
const cp = require('child_process');

/** Pinned so that the REST behaviour our client is tested against does not drift. */
const MLFLOW_VERSION = '3.17.2';
/** A CPU wheel of this version lies on the development machines' disk. */
const TORCH_VERSION = '2.13.0';
/** torch 2.13 no longer installs NumPy, which the benchmark scripts use to read and write data. */
const NUMPY_VERSION = '2.4.6';
/** Keras 3, run on the torch backend (no TensorFlow needed). */
const KERAS_VERSION = '3.15.1';
/** Validates deploy/ against Kubernetes' own schemas, offline (they ship in the package). */
const KUBERNETES_VALIDATE_VERSION = '1.37.0';

const REQUIREMENTS = {
  mlflow: [`mlflow==${MLFLOW_VERSION}`],
  torch: [`torch==${TORCH_VERSION}`, `numpy==${NUMPY_VERSION}`],
  keras: [`keras==${KERAS_VERSION}`, `torch==${TORCH_VERSION}`],
  k8s: [`kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}`],
};

function log(message) {
  console.log(`[setup:venv] ${message}`);
}

function venvPython(root) {
  return path.join(root, '.venv', 'bin', 'python');
}

function run(command, args) {
  const r = cp.spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`'${command} ${args.join(' ')}' exited with status ${r.status}`);
}

/** @param {string} root @param {'mlflow'|'torch'|'keras'|'k8s'} set */
function setupVenv(root, set) {
  const py = venvPython(root);
  if (!fs.existsSync(py)) {
    log('creating .venv');
    run(process.env.PYTHON || 'python3', ['-m', 'venv', path.join(root, '.venv')]);
  }
  const stampPath = path.join(root, '.venv', `.tfjs-antifragile-${set}.json`);
  const wanted = JSON.stringify(REQUIREMENTS[set]);
  if (fs.existsSync(stampPath) && fs.readFileSync(stampPath, 'utf8') === wanted) {
    log(`${set} ready (${REQUIREMENTS[set].join(', ')})`);
    return py;
  }
  log(`installing ${REQUIREMENTS[set].join(', ')} into .venv`);
  run(py, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', ...REQUIREMENTS[set]]);
  fs.writeFileSync(stampPath, wanted);
  return py;
}

module.exports = {
  setupVenv,
  venvPython,
  MLFLOW_VERSION,
  TORCH_VERSION,
  KERAS_VERSION,
  KUBERNETES_VALIDATE_VERSION,
};
