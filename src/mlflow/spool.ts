/**
 * The spool: a file in the local run folder that exists from the run's start until the server
 * has confirmed its end, and holds, in order, every operation not yet confirmed while the
 * server is unreachable (the run's creation included), so that neither an outage nor a crash
 * loses anything or leaves the run RUNNING for good. One JSON object per line; the first line
 * says which run the operations belong to and which process writes them. Appended to while in
 * use; rewritten (atomically) when the server confirms what it holds. Artifact bytes lie beside
 * it, one file per pending upload.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MlflowError } from './errors';
import type { DatasetInput, RunStatus } from './types';
import { decodeMetricValue, encodeMetricValue, type WireNumber } from './values';

/** An operation on a run, as queued and spooled. */
export type RunOperation =
  | { kind: 'metric'; key: string; value: number; step: number; timestamp: number }
  | { kind: 'param'; key: string; value: string }
  | { kind: 'tag'; key: string; value: string }
  | {
      kind: 'artifact';
      path: string;
      contentType?: string;
      /** The bytes, while they are held in memory. */
      data?: Uint8Array;
      /** The spooled copy of the bytes. */
      file?: string;
    }
  | { kind: 'inputs'; datasets: DatasetInput[] }
  | { kind: 'end'; status: RunStatus; endTime: number }
  | {
      /** Creating the run (always the first operation of a run the server has not confirmed). */
      kind: 'create';
      experimentName: string;
      runName?: string;
      /** Values may be local ids of other runs (`mlflow.parentRunId`): resolved when sent. */
      tags: Record<string, string>;
      startTime: number;
      userId?: string;
    };

/** First line of a spool file. */
export interface SpoolHeader {
  format: typeof SPOOL_FORMAT;
  /** The id this process gave the run before the server did (tag `tfjs_antifragile.local_id`). */
  localId: string;
  /** The server's run id, once it confirmed the creation. */
  runId?: string;
  experimentId?: string;
  artifactUri?: string;
  trackingUri: string;
  /** The process that writes the spool, and its host: a live one keeps others off it. */
  pid: number;
  host: string;
}

export const SPOOL_FORMAT = 'tfjs-antifragile/mlflow-spool@2';
const OLD_FORMAT = 'tfjs-antifragile/mlflow-spool@1';
/** File name of the spool inside the local run folder. */
export const SPOOL_FILE = 'mlflow-spool.jsonl';
const ARTIFACTS_DIR = 'mlflow-spool-artifacts';

type SpooledOperation =
  | (Omit<Extract<RunOperation, { kind: 'metric' }>, 'value'> & { value: WireNumber })
  | Exclude<RunOperation, { kind: 'metric' }>;

/** A spool file and its artifact folder, in one local run folder. */
export class Spool {
  /** Path of the spool file. */
  readonly path: string;
  private readonly artifactsDir: string;
  private counter = 0;

  constructor(
    /** The local run folder. */
    readonly dir: string,
  ) {
    this.path = path.join(dir, SPOOL_FILE);
    this.artifactsDir = path.join(dir, ARTIFACTS_DIR);
  }

  /** Whether the spool file exists. */
  get exists(): boolean {
    return fs.existsSync(this.path);
  }

  /** Creates the spool file with its header unless it exists. */
  open(header: SpoolOwnerless): void {
    if (this.exists) return;
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(this.path, headerLine(header));
  }

  /**
   * Replaces the spool's contents with `header` and `ops` (already spooled: artifact operations
   * refer to their files), atomically: a crash leaves the old file or the new one.
   */
  rewrite(header: SpoolOwnerless, ops: RunOperation[]): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const lines = ops.map((op) => JSON.stringify(toSpooled(op)) + '\n').join('');
    fs.writeFileSync(tmp, headerLine(header) + lines);
    fs.renameSync(tmp, this.path);
  }

  /**
   * Appends operations in order. Artifact bytes held in memory are written beside the spool
   * first, and the operation then refers to that file (its `data` is released).
   */
  append(ops: RunOperation[]): void {
    if (ops.length === 0) return;
    const lines: string[] = [];
    for (const op of ops) {
      if (op.kind === 'artifact' && op.file === undefined) {
        fs.mkdirSync(this.artifactsDir, { recursive: true });
        const name = `${Date.now()}-${process.pid}-${this.counter++}`;
        op.file = path.join(this.artifactsDir, name);
        fs.writeFileSync(op.file, op.data ?? new Uint8Array());
        op.data = undefined;
      }
      lines.push(JSON.stringify(toSpooled(op)));
    }
    fs.appendFileSync(this.path, lines.join('\n') + '\n');
  }

  /** Deletes the spool file, its artifact copies and the run folder if that is then empty. */
  remove(): void {
    fs.rmSync(this.path, { force: true });
    fs.rmSync(this.artifactsDir, { recursive: true, force: true });
    try {
      fs.rmdirSync(this.dir);
    } catch {
      /* not empty or already gone: leave it */
    }
  }

  /** Reads a spool file: its header and its operations, in order. */
  static read(file: string): { header: SpoolHeader; operations: RunOperation[] } {
    const lines = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '');
    let header: SpoolHeader;
    try {
      header = JSON.parse(lines[0] ?? '') as SpoolHeader;
    } catch {
      header = {} as SpoolHeader;
    }
    if ((header.format as string) === OLD_FORMAT && typeof header.runId === 'string') {
      header = { ...header, format: SPOOL_FORMAT, localId: header.runId, pid: 0, host: '' };
    }
    if (header.format !== SPOOL_FORMAT || typeof header.localId !== 'string') {
      throw new MlflowError(`'${file}' is not a spool file (expected a ${SPOOL_FORMAT} header)`);
    }
    const operations: RunOperation[] = [];
    for (let i = 1; i < lines.length; i++) {
      try {
        operations.push(fromSpooled(JSON.parse(lines[i]) as SpooledOperation));
      } catch {
        // A line cut short by a crash mid-write can only be the last one.
        if (i !== lines.length - 1) {
          throw new MlflowError(`spool '${file}' line ${i + 1} is not valid JSON`);
        }
      }
    }
    return { header, operations };
  }
}

/** A header without its owner fields: this process becomes the owner. */
export type SpoolOwnerless = Omit<SpoolHeader, 'format' | 'pid' | 'host'>;

function headerLine(header: SpoolOwnerless): string {
  const full: SpoolHeader = {
    format: SPOOL_FORMAT,
    ...header,
    pid: process.pid,
    host: os.hostname(),
  };
  return JSON.stringify(full) + '\n';
}

/**
 * Whether the process named in a spool header is still running (on this host) and so may still
 * be writing it. A spool from another host counts as left behind (it was copied here). This
 * process counts as alive only while `ownPaths` holds the spool (a live run of its own).
 */
export function spoolOwnerAlive(header: SpoolHeader, file: string, ownPaths: ReadonlySet<string>) {
  if (!header.pid) return false;
  if (header.host !== os.hostname()) return false;
  if (header.pid === process.pid) return ownPaths.has(path.resolve(file));
  try {
    process.kill(header.pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

function toSpooled(op: RunOperation): SpooledOperation {
  if (op.kind === 'metric') return { ...op, value: encodeMetricValue(op.value) };
  if (op.kind === 'artifact')
    return { kind: op.kind, path: op.path, contentType: op.contentType, file: op.file };
  return op;
}

function fromSpooled(op: SpooledOperation): RunOperation {
  if (op.kind === 'metric') return { ...op, value: decodeMetricValue(op.value) };
  return op;
}
