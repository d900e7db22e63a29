/**
 * Runs `mlflow server` in a process group of its own and stops the whole group promptly:
 * on SIGINT or SIGTERM the group (the `mlflow` command, its uvicorn/gunicorn server and their
 * workers) gets SIGTERM, and whatever is still there after a short grace period gets SIGKILL.
 * Signalled only the `mlflow` process, the server waits 20–35 s for its workers to wind down.
 */
import { spawn } from 'child_process';

/** How long the server's group has to exit after SIGTERM before it is killed. */
export const MLFLOW_STOP_GRACE_MS = 3000;

/** Signals the process group `pgid`; false when it is already gone. */
function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Spawns `bin args` as the leader of a new process group (stdio inherited) and resolves its
 * exit code once it and its group are gone: 0 when this process stopped it on SIGINT/SIGTERM,
 * else the server's own code (1 when a signal from elsewhere ended it).
 */
export function runServerGroup(
  bin: string,
  args: readonly string[],
  graceMs = MLFLOW_STOP_GRACE_MS,
): Promise<number> {
  const child = spawn(bin, args, { stdio: 'inherit', detached: true });
  let stopping = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (child.pid === undefined) return;
    if (stopping) {
      signalGroup(child.pid, 'SIGKILL'); // a second Ctrl-C: no more waiting
      return;
    }
    stopping = true;
    signalGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(() => child.pid && signalGroup(child.pid, 'SIGKILL'), graceMs);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise<number>((resolve) => {
    const finish = (code: number) => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      if (killTimer) clearTimeout(killTimer);
      // Workers the leader left behind go with it.
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      resolve(code);
    };
    child.on('error', () => finish(1));
    child.on('exit', (code) => finish(stopping ? 0 : (code ?? 1)));
  });
}
