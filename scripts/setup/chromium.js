'use strict';
/**
 * The browser the HTML report's test opens (`test/report.test.ts`): Debian's `chromium`, driven
 * by playwright-core. Installed with apt-get when it is missing and we run as root; otherwise
 * the step fails and says which command to run (or how to point the test at another Chromium).
 */
const fs = require('fs');
const cp = require('child_process');

const DEFAULT_PATH = '/usr/bin/chromium';

function log(message) {
  console.log(`[setup:chromium] ${message}`);
}

function chromiumPath() {
  return process.env.CHROMIUM_PATH || DEFAULT_PATH;
}

function run(command, args) {
  log(`running: ${command} ${args.join(' ')}`);
  const r = cp.spawnSync(command, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`'${command} ${args.join(' ')}' exited with status ${r.status}`);
}

function hasAptGet() {
  return cp.spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Makes sure Chromium is there; returns its path. */
function setupChromium() {
  const wanted = chromiumPath();
  if (fs.existsSync(wanted)) {
    log(`ready (${wanted})`);
    return wanted;
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (wanted !== DEFAULT_PATH || !isRoot || !hasAptGet()) {
    throw new Error(
      `Chromium is missing at ${wanted} (the HTML report's test opens it). Install it with ` +
        "'sudo apt-get install -y chromium' (Debian/Ubuntu), or set CHROMIUM_PATH to a Chromium " +
        'or Chrome binary, then run the command again',
    );
  }
  log(`${wanted} is missing; installing Debian's chromium with apt-get (as root)`);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium']);
  if (!fs.existsSync(wanted)) {
    throw new Error(`apt-get installed chromium but ${wanted} is still missing`);
  }
  log(`installed (${wanted})`);
  return wanted;
}

module.exports = { setupChromium, chromiumPath };
