#!/usr/bin/env node
'use strict';
/**
 * One idempotent install step for everything npm alone cannot install:
 *   node scripts/setup.js            native backend (TensorFlow's C library for tfjs-node)
 *   node scripts/setup.js --mlflow   ... and the MLflow tracking server in .venv
 *   node scripts/setup.js --test     ... and what `npm test` needs: MLflow, Keras on PyTorch (the
 *                                    Keras import tests), kubernetes-validate (deploy/'s
 *                                    manifests), and Chromium for the HTML report's test
 *                                    (apt-get when missing and root)
 *   node scripts/setup.js --torch    ... and PyTorch in .venv (benchmarks)
 *   node scripts/setup.js --keras    ... and Keras 3 on PyTorch in .venv (importing .keras/.h5
 *                                        models; the Keras tests)
 *   node scripts/setup.js --k8s      ... and kubernetes-validate in .venv (checks deploy/)
 */
const path = require('path');
const { setupNative } = require('./setup/native');
const { setupVenv } = require('./setup/python-venv');
const { setupChromium } = require('./setup/chromium');

const root = path.resolve(__dirname, '..');
const args = new Set(process.argv.slice(2));

try {
  setupNative(root);
  if (args.has('--mlflow') || args.has('--test')) setupVenv(root, 'mlflow');
  if (args.has('--test')) setupChromium();
  if (args.has('--torch')) setupVenv(root, 'torch');
  if (args.has('--keras') || args.has('--test')) setupVenv(root, 'keras');
  if (args.has('--k8s') || args.has('--test')) setupVenv(root, 'k8s');
} catch (err) {
  console.error(`[setup] failed: ${err && err.message ? err.message : err}`);
  process.exit(1);
}
