/**
 * Replaying spools left behind: every `mlflow-spool.jsonl` under a folder is taken up, sent in
 * order (parents before the runs nested in them) and its run ended — `KILLED` when the process
 * that wrote it died before ending it — so that no run stays RUNNING for good.
 */
import * as fs from 'fs';
import * as path from 'path';
import { MlflowClient } from './client';
import { MLFLOW_ENV } from './config';
import { MlflowError } from './errors';
import { MlflowRun } from './run';
import { Spool, SPOOL_FILE } from './spool';

/** Options of {@link syncSpools}. */
export interface SyncOptions {
  /** How long to keep trying each spool while the server does not answer, in ms. Default 60 000. */
  timeoutMs?: number;
  /**
   * The client of a spool's server. Default: one for `MLFLOW_TRACKING_URI` when it is set, else
   * for the server the spool names (credentials from the `MLFLOW_*` variables).
   */
  client?: (trackingUri: string) => MlflowClient;
  /** Progress lines; default none. */
  log?: (line: string) => void;
}

/** What happened to one spool. */
export interface SpoolSync {
  /** The spool file. */
  path: string;
  /** The run's server id (its local id if the server never created it). */
  runId: string;
  /** Whether everything in it reached the server (then the spool is gone). */
  done: boolean;
  /** Operations still pending. */
  pending: number;
  /** Why not, when not done. */
  problem?: string;
}

/** Every spool file under `dir`, shallowest first (a parent run's before its children's). */
export function findSpools(dir: string): string[] {
  const found: string[] = [];
  const visit = (folder: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.isFile() && entry.name === SPOOL_FILE) found.push(full);
    }
  };
  visit(dir);
  const depth = (file: string) => file.split(path.sep).length;
  return found.sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
}

/**
 * Sends every spool under `dir` to its server and ends its run (KILLED when it was never
 * ended). Spools still in use by a live process are left alone (and reported as not done).
 * Never throws for the network: each spool's outcome is in the result.
 */
export async function syncSpools(dir: string, options: SyncOptions = {}): Promise<SpoolSync[]> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const clients = new Map<string, MlflowClient>();
  const clientFor =
    options.client ??
    ((uri: string) => {
      const target = process.env[MLFLOW_ENV.trackingUri] || uri;
      let client = clients.get(target);
      if (!client) clients.set(target, (client = new MlflowClient({ trackingUri: target })));
      return client;
    });
  const out: SpoolSync[] = [];
  for (const file of findSpools(dir)) {
    out.push(await syncOne(file, clientFor, timeoutMs, options.log));
  }
  return out;
}

async function syncOne(
  file: string,
  clientFor: (uri: string) => MlflowClient,
  timeoutMs: number,
  log?: (line: string) => void,
): Promise<SpoolSync> {
  let run: MlflowRun;
  try {
    const { header } = Spool.read(file);
    run = MlflowRun.resume(clientFor(header.trackingUri), file, { onStatus: log });
  } catch (err) {
    const problem = err instanceof MlflowError ? err.message : String(err);
    return { path: file, runId: '', done: false, pending: 0, problem };
  }
  const pendingBefore = run.pending;
  const result = run.ended
    ? await run.flush({ force: true, timeoutMs })
    : await run.end('KILLED', { timeoutMs });
  const done = result.pending === 0 && result.errors.length === 0;
  if (!done) run.release(); // a later sync may take the spool up again
  const problem = done
    ? undefined
    : result.errors.length > 0
      ? result.errors.map((e) => e.message).join('; ')
      : `the server did not answer within ${Math.round(timeoutMs / 1000)} s` +
        (result.lastFailure ? ` (${result.lastFailure})` : '');
  log?.(
    `${file}: ${done ? 'sent' : 'NOT sent'} — run ${run.runId}, ` +
      `${pendingBefore} operation(s) found, ${result.pending} pending` +
      (problem ? `: ${problem}` : ''),
  );
  return { path: file, runId: run.runId, done, pending: result.pending, problem };
}
