/**
 * The `setup` verb's command line: help, usage errors and the project it works on. What it
 * installs (native and wasm backends in a fresh project) is tested end to end in
 * test/consumer.test.ts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main, type CliIo } from '../cli/main';
import { findProjectRoot } from '../cli/setup';

function capture(): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) },
    out: () => out,
    err: () => err,
  };
}

describe('tfjs-antifragile setup', () => {
  it('is listed in the main help and has its own', async () => {
    const all = capture();
    expect(await main(['--help'], all.io)).toBe(0);
    expect(all.out()).toContain('tfjs-antifragile setup [--native | --wasm]');
    const own = capture();
    expect(await main(['setup', '--help'], own.io)).toBe(0);
    expect(own.out()).toContain('--native   (default) @tensorflow/tfjs-node');
    expect(own.out()).toContain('--wasm     @tensorflow/tfjs-backend-wasm');
  });

  it('refuses both backends at once, arguments and unknown flags (exit 2)', async () => {
    for (const args of [['--native', '--wasm'], ['somewhere'], ['--gpu']]) {
      const c = capture();
      expect(await main(['setup', ...args], c.io)).toBe(2);
      expect(c.err()).toMatch(/^setup: /);
    }
  });

  it('works on the nearest folder with a package.json, and says so when there is none', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'setup-root-'));
    try {
      const nested = path.join(dir, 'src', 'deep');
      fs.mkdirSync(nested, { recursive: true });
      if (fs.existsSync(path.join(os.tmpdir(), 'package.json'))) return; // a foreign /tmp setup
      expect(() => findProjectRoot(nested)).toThrow(
        `no package.json in ${nested} or any folder above it: run 'npx tfjs-antifragile setup' in your project's folder`,
      );
      fs.writeFileSync(path.join(dir, 'package.json'), '{}');
      expect(findProjectRoot(nested)).toBe(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
