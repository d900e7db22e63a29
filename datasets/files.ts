import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { DatasetFormatError, DatasetNotFoundError } from './errors';

/** What a loader needs in its folder, to say so when something is missing. */
export interface FolderHelp {
  /** Dataset name as users know it, e.g. `CIFAR-10`. */
  dataset: string;
  /** The option that names the folder, e.g. `dir`. */
  option: string;
  /** What to put into the folder (one line per item). */
  layout: string;
  /** Where users get the files. */
  source: string;
}

/**
 * The folder that holds `marker`: `dir` itself, or one of `subfolders` inside it (the name the
 * official archive extracts to), so that both `…/cifar` and `…/cifar/cifar-10-batches-bin` work.
 */
export function resolveFolder(
  dir: string,
  marker: string[],
  subfolders: string[],
  help: FolderHelp,
): string {
  const absolute = path.resolve(dir);
  if (!fs.existsSync(absolute) || !fs.statSync(absolute).isDirectory()) {
    throw notFound(help, absolute, [absolute], `the folder '${absolute}' does not exist`);
  }
  for (const candidate of [absolute, ...subfolders.map((s) => path.join(absolute, s))]) {
    if (marker.some((m) => exists(path.join(candidate, m)))) return candidate;
  }
  return absolute;
}

function exists(file: string): boolean {
  return fs.existsSync(file) || fs.existsSync(`${file}.gz`);
}

/** Throws a {@link DatasetNotFoundError} listing the files of `wanted` that `folder` lacks. */
export function requireFiles(
  folder: string,
  wanted: string[],
  help: FolderHelp,
  allowGzip = false,
): void {
  const missing = wanted.filter(
    (f) => !(allowGzip ? exists(path.join(folder, f)) : fs.existsSync(path.join(folder, f))),
  );
  if (missing.length > 0) {
    throw notFound(
      help,
      folder,
      missing.map((f) => path.join(folder, f)),
      `missing ${missing.join(', ')}${allowGzip ? ' (plain or .gz)' : ''}`,
    );
  }
}

/** The error for a missing folder or files: what is missing, what goes where, where to get it. */
export function notFound(
  help: FolderHelp,
  folder: string,
  missing: string[],
  what: string,
): DatasetNotFoundError {
  return new DatasetNotFoundError(
    `${help.dataset} not found in '${folder}': ${what}.\n` +
      `Put these files into the folder given as '${help.option}':\n${help.layout}\n` +
      `Get them from ${help.source}\n` +
      `(nothing is downloaded at run time).`,
    missing,
  );
}

/**
 * Reads `folder/name` or, when only that exists, `folder/name.gz` (gunzipped); a gzip stream
 * that is corrupt or cut short is a {@link DatasetFormatError} naming the file.
 */
export function readPlainOrGzip(folder: string, name: string): { file: string; bytes: Buffer } {
  const plain = path.join(folder, name);
  if (fs.existsSync(plain)) return { file: plain, bytes: fs.readFileSync(plain) };
  const gz = `${plain}.gz`;
  const packed = fs.readFileSync(gz);
  try {
    return { file: gz, bytes: zlib.gunzipSync(packed) };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DatasetFormatError(gz, `is not a valid gzip file (${reason})`);
  }
}
