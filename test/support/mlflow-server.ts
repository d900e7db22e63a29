/**
 * A real MLflow tracking server for tests: `.venv/bin/mlflow server` on 127.0.0.1, a free port,
 * a temporary SQLite store and artifact folder. It can be stopped and started again on the same
 * store and port (outage tests), and is always cleaned up: by `close()`, and, should a test
 * process die first, by an exit hook that kills its process group.
 */
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const MLFLOW_BIN = path.join(__dirname, '..', '..', '.venv', 'bin', 'mlflow');
const running = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of running) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** A free TCP port on 127.0.0.1 (asked of the OS). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running (or stopped) test server. */
export class MlflowTestServer {
  private child?: ChildProcess;
  private log = '';

  private constructor(
    /** Temporary folder: `mlflow.db` and `artifacts/`. */
    readonly dir: string,
    readonly port: number,
  ) {}

  /** Base URL, for `MLFLOW_TRACKING_URI`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Whether the server process is running. */
  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts a server on a free port with a fresh store. */
  static async start(timeoutMs = 90_000): Promise<MlflowTestServer> {
    if (!fs.existsSync(MLFLOW_BIN)) {
      throw new Error(
        `${MLFLOW_BIN} is missing: run \`node scripts/setup.js --mlflow\` (npm test does) first`,
      );
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-antifragile-mlflow-'));
    const server = new MlflowTestServer(dir, await freePort());
    try {
      await server.restart(timeoutMs);
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** Starts the server again (same store, same port) and waits for `/health`. */
  async restart(timeoutMs = 90_000): Promise<void> {
    if (this.child) throw new Error('the MLflow test server is already running');
    installExitHook();
    this.log = '';
    const child = spawn(
      MLFLOW_BIN,
      [
        'server',
        '--backend-store-uri',
        `sqlite:///${path.join(this.dir, 'mlflow.db')}`,
        '--artifacts-destination',
        path.join(this.dir, 'artifacts'),
        '--host',
        '127.0.0.1',
        '--port',
        String(this.port),
        '--workers',
        '1',
      ],
      {
        detached: true, // its own process group: stop() ends the workers too
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false' },
      },
    );
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
    if (child.pid !== undefined) running.add(child.pid);
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? code}`;
      if (child.pid !== undefined) running.delete(child.pid);
      if (this.child === child) this.child = undefined;
    });

    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited) break;
      try {
        const r = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2000) });
        if (r.ok && (await r.text()).trim() === 'OK') return;
      } catch {
        /* not up yet */
      }
      await sleep(250);
    }
    const tail = this.log.split('\n').slice(-30).join('\n');
    await this.stop();
    throw new Error(
      `mlflow server on port ${this.port} ${exited ?? `not healthy after ${timeoutMs} ms`}:\n${tail}`,
    );
  }

  /** Stops the server (SIGTERM to its process group, SIGKILL after 10 s). The store stays. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.pid === undefined) return;
    const pgid = child.pid;
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(-pgid, s);
      } catch {
        /* already gone */
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
    // The workers share the group; make sure none is left holding the port.
    for (let i = 0; i < 40 && groupAlive(pgid); i++) await sleep(250);
    if (groupAlive(pgid)) signal('SIGKILL');
    running.delete(pgid);
    this.child = undefined;
  }

  /** Stops the server and deletes its store. */
  async close(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines the server printed. */
  logTail(lines = 30): string {
    return this.log.split('\n').slice(-lines).join('\n');
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a test server before a test file's tests and closes it after them, with
 * `MLFLOW_TRACKING_URI` pointing at it meanwhile (restored afterwards). Returns the server's getter.
 */
export function useMlflowServer(): () => MlflowTestServer {
  let server: MlflowTestServer | undefined;
  const saved = process.env.MLFLOW_TRACKING_URI;
  beforeAll(async () => {
    server = await MlflowTestServer.start();
    process.env.MLFLOW_TRACKING_URI = server.url;
  }, 120_000);
  afterAll(async () => {
    if (saved === undefined) delete process.env.MLFLOW_TRACKING_URI;
    else process.env.MLFLOW_TRACKING_URI = saved;
    await server?.close();
  });
  return () => {
    if (!server) throw new Error('the MLflow test server is not running (used outside a test?)');
    return server;
  };
}
