import * as cp from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Readable, Writable } from 'stream';

/** The project root (the folder holding package.json), found from this file in src or dist. */
export function projectRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

/** The project venv's Python (`.venv/bin/python`), or undefined when the venv does not exist. */
export function venvPython(): string | undefined {
  const py = path.join(projectRoot(), '.venv', 'bin', 'python');
  return fs.existsSync(py) ? py : undefined;
}

/**
 * A Python script of the project run as a worker by the venv's Python: one command line written
 * to its stdin, one JSON line read back from its stdout (its stderr goes to ours). The first line
 * it prints is its greeting, returned by {@link PythonWorker.start}.
 */
export class PythonWorker {
  private readonly lines: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private ended = false;

  private constructor(
    private readonly script: string,
    private readonly child: cp.ChildProcessByStdio<Writable, Readable, null>,
  ) {
    let buffer = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        this.push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
    });
    child.on('close', () => {
      this.ended = true;
      this.waiting?.(undefined);
      this.waiting = undefined;
    });
  }

  private push(line: string): void {
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve(line);
    } else {
      this.lines.push(line);
    }
  }

  private nextLine(): Promise<string | undefined> {
    const line = this.lines.shift();
    if (line !== undefined || this.ended) return Promise.resolve(line);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  private async readJson<T>(): Promise<T> {
    const line = await this.nextLine();
    if (line === undefined) throw new Error(`${this.script} exited (see its output above)`);
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new Error(`${this.script} printed a line that is not JSON: ${line.slice(0, 300)}`);
    }
  }

  /** Starts `script` (relative to the project root) with `args`; resolves with its greeting. */
  static async start<G>(
    script: string,
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ worker: PythonWorker; greeting: G }> {
    const py = venvPython();
    if (!py)
      throw new Error('.venv/bin/python not found: run `node scripts/setup.js --torch` first');
    const child = cp.spawn(py, [path.join(projectRoot(), script), ...args], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const worker = new PythonWorker(script, child);
    const greeting = await worker.readJson<G>();
    return { worker, greeting };
  }

  /** Sends one command line and resolves with the JSON answer. */
  async ask<T>(command: string): Promise<T> {
    if (this.ended) throw new Error(`${this.script} has exited`);
    this.child.stdin.write(command + '\n');
    const answer = await this.readJson<T & { error?: string }>();
    if (answer.error) throw new Error(`${this.script}: ${answer.error}`);
    return answer;
  }

  /** Asks the worker to quit and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.ended) return;
    const closed = new Promise((resolve) => this.child.once('close', resolve));
    this.child.stdin.end('quit\n');
    await closed;
  }
}
