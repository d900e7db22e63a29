import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * The first lines of a plain-Node script that a test runs as a child process: they let it
 * `require` the project's TypeScript sources directly (transpiled on load, no type check).
 */
export const REQUIRE_TYPESCRIPT = `
const fs = require('fs');
const ts = require('typescript');
require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(out.outputText, filename);
};
`;

/** The project root (where node_modules is). */
const ROOT = path.resolve(__dirname, '..', '..');

/** Absolute path of a project file, as a JS string literal for a child script's `require`. */
export function projectPath(file: string): string {
  return JSON.stringify(path.join(ROOT, file));
}

/**
 * Runs `source` (prefixed with {@link REQUIRE_TYPESCRIPT}) as a Node script in a child process
 * with `env` added to this one's; resolves its exit code and output (stdout and stderr). A child
 * still running after `timeoutMs` (e.g. kept alive by a thread) is killed and the promise rejects.
 */
export function runNodeScript(
  source: string,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60000,
): Promise<{ code: number | null; out: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'child-script-'));
  const script = path.join(dir, 'child.js');
  fs.writeFileSync(script, `${REQUIRE_TYPESCRIPT}${source}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, ...env, NODE_PATH: path.join(ROOT, 'node_modules') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the child did not exit within ${timeoutMs / 1000} s; output:\n${out}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code, out });
    });
  });
}
