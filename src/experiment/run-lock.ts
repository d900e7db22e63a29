import * as fs from 'fs';
import * as os from 'os';
import { RUN_FILES, type RunFolder, type RunManifest } from './run-folder';

/** What `run.lock` holds: the process that runs the folder. */
export interface RunLockOwner {
  pid: number;
  hostname: string;
  started: string;
}

/** A run folder's lock, held while a process runs it. */
export interface RunLock {
  /** Removes `run.lock` (once; later calls do nothing). */
  release(): void;
}

function readOwner(folder: RunFolder): RunLockOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(folder.file(RUN_FILES.lock), 'utf8')) as RunLockOwner;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a process holds the folder's lock now: `run.lock` exists and names a live process of
 * this machine (or one on another machine, which cannot be checked). A lock whose process has
 * ended (killed, crashed) is stale.
 */
export function lockHolder(folder: RunFolder): RunLockOwner | undefined {
  const owner = readOwner(folder);
  if (!owner) return undefined;
  if (owner.hostname === os.hostname() && !isAlive(owner.pid)) return undefined;
  return owner;
}

/**
 * `info` as it stands: a run recorded as `running` whose process has ended without saying how
 * (a second Ctrl-C, a kill, a full disk) was stopped: its status is `killed`.
 */
export function effectiveInfo(folder: RunFolder, info: RunManifest): RunManifest {
  if (info.status !== 'running' || lockHolder(folder)) return info;
  return {
    ...info,
    status: 'killed',
    error: info.error ?? 'the process that ran it ended without recording how it stopped',
  };
}

/** Marks a run that is still `running` as `killed` (synchronously, for a process about to exit). */
function markKilled(folder: RunFolder): void {
  try {
    const info = folder.readInfo();
    if (info.status !== 'running') return;
    const now = new Date().toISOString();
    const last = info.invocations[info.invocations.length - 1];
    if (last && !last.ended) Object.assign(last, { ended: now, status: 'killed' });
    folder.writeInfo({ ...info, status: 'killed' });
  } catch {
    // The process is exiting: leave the folder as it is; readers see the lock is stale.
  }
}

/**
 * Takes the run folder's lock (`run.lock`, created exclusively) for this process, so that two
 * processes (or two runs in one process) never run one folder at once. A stale lock (its
 * process has ended) is taken over. If the process exits while holding it (`process.exit`, as a
 * second Ctrl-C does), the run is marked `killed` and the lock removed.
 * @throws Error naming the folder and the process that runs it
 */
export function lockRunFolder(folder: RunFolder): RunLock {
  const file = folder.file(RUN_FILES.lock);
  const owner: RunLockOwner = {
    pid: process.pid,
    hostname: os.hostname(),
    started: new Date().toISOString(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(owner) + '\n', { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = lockHolder(folder);
      if (holder) {
        throw new Error(
          `${folder.dir} is already being run by process ${holder.pid} on ${holder.hostname} ` +
            `(since ${holder.started}; ${RUN_FILES.lock}): wait for it to end or stop it. ` +
            `If no such process runs, delete ${file}`,
        );
      }
      fs.rmSync(file, { force: true });
    }
  }
  let held = true;
  const onExit = () => {
    markKilled(folder);
    release();
  };
  const release = () => {
    if (!held) return;
    held = false;
    process.removeListener('exit', onExit);
    fs.rmSync(file, { force: true });
  };
  process.on('exit', onExit);
  return { release };
}
