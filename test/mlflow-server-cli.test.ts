/**
 * `tfjs-antifragile mlflow` (what `npm run mlflow` runs): the server it starts answers, and
 * Ctrl-C stops it with every process it started (the server's workers included), exit code 0.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import { REQUIRE_TYPESCRIPT, projectPath } from './support/child-script';
import { freePort } from './support/mlflow-server';
import { tempRuns } from './recipes-helpers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parent pid and state of each process (from /proc), by pid. */
function processTable(): Map<number, { ppid: number; state: string }> {
  const table = new Map<number, { ppid: number; state: string }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid …"; comm may hold spaces or parentheses: read after the last ')'.
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), { ppid: Number(ppid), state });
    } catch {
      /* ended while listed */
    }
  }
  return table;
}

/** Every live descendant of `pid`. */
function descendants(pid: number): number[] {
  const table = processTable();
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift() as number;
    for (const [child, { ppid }] of table) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** Whether `pid` still runs (a zombie waiting to be reaped does not). */
function alive(pid: number): boolean {
  const entry = processTable().get(pid);
  return entry !== undefined && entry.state !== 'Z';
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok && (await res.text()).trim() === 'OK';
  } catch {
    return false;
  }
}

it('starts a server that answers; Ctrl-C stops it and every process it started', async () => {
  const port = await freePort();
  const store = tempRuns('mlflow-verb');
  const source =
    REQUIRE_TYPESCRIPT +
    `const { main } = require(${projectPath('cli/main.ts')});
main(['mlflow', '--port', '${port}', '--store', ${JSON.stringify(store)}]).then((code) => process.exit(code));`;
  // Without MLflow's job runner (GenAI jobs, extra processes) the server starts sooner here.
  const cli = spawn(process.execPath, ['-e', source], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false' },
  });
  let output = '';
  cli.stdout.on('data', (d) => (output += String(d)));
  cli.stderr.on('data', (d) => (output += String(d)));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    cli.on('exit', (code, signal) => resolve({ code, signal })),
  );
  try {
    let up = false;
    // A loaded machine takes minutes to import MLflow; this waits for it, not for a deadline.
    for (let i = 0; i < 600 && !up && cli.exitCode === null; i++) {
      up = await answers(`http://127.0.0.1:${port}/health`);
      if (!up) await sleep(500);
    }
    if (!up) throw new Error(`the server never answered on port ${port}:\n${output}`);
    expect(output).toContain(`MLflow UI and tracking server: http://127.0.0.1:${port}`);
    expect(fs.existsSync(`${store}/mlflow.db`)).toBe(true);
    const started = descendants(cli.pid as number);
    expect(started.length).toBeGreaterThan(0); // mlflow and its server's processes

    cli.kill('SIGINT');
    const { code } = await exited;
    expect([0, 130]).toContain(code);
    expect(started.filter(alive)).toEqual([]);
    expect(await answers(`http://127.0.0.1:${port}/health`)).toBe(false);
  } finally {
    if (cli.exitCode === null) cli.kill('SIGKILL');
    for (const pid of descendants(cli.pid as number)) process.kill(pid, 'SIGKILL');
  }
}, 480_000);
