/**
 * The spool: an append-only file in the local run folder that holds, in order, every operation
 * not yet confirmed by the tracking server while it is unreachable, so that a crash loses
 * nothing. One JSON object per line; the first line says which run the operations belong to.
 * Artifact bytes lie beside it, one file per pending upload.
 */
import * as fs from 'fs';
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
  | { kind: 'end'; status: RunStatus; endTime: number };

/** First line of a spool file. */
export interface SpoolHeader {
  format: typeof SPOOL_FORMAT;
  runId: string;
  experimentId: string;
  artifactUri: string;
  trackingUri: string;
}

export const SPOOL_FORMAT = 'tfjs-antifragile/mlflow-spool@1';
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
  open(header: Omit<SpoolHeader, 'format'>): void {
    if (this.exists) return;
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(this.path, JSON.stringify({ format: SPOOL_FORMAT, ...header }) + '\n');
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
    if (header.format !== SPOOL_FORMAT || typeof header.runId !== 'string') {
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
