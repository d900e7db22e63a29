#!/usr/bin/env node
'use strict';
/**
 * One idempotent install step for everything npm alone cannot install:
 *   node scripts/setup.js            native backend (TensorFlow's C library for tfjs-node)
 *   node scripts/setup.js --mlflow   ... and the MLflow tracking server in .venv (tests)
 *   node scripts/setup.js --torch    ... and PyTorch in .venv (benchmarks)
 */
const path = require('path');
const { setupNative } = require('./setup/native');
const { setupVenv } = require('./setup/python-venv');

const root = path.resolve(__dirname, '..');
const args = new Set(process.argv.slice(2));

try {
  setupNative(root);
  if (args.has('--mlflow')) setupVenv(root, 'mlflow');
  if (args.has('--torch')) setupVenv(root, 'torch');
} catch (err) {
  console.error(`[setup] failed: ${err && err.message ? err.message : err}`);
  process.exit(1);
}
