/**
 * NumPy's `.npy` and `.npz` files (an `.npz` is a zip of `.npy` files, stored or deflated), read
 * without Python: the way Python users hand over data. Values come back as float32.
 */
import * as fs from 'fs';
import { inflateRawSync } from 'zlib';
import { DatasetFormatError, DatasetNotFoundError } from './errors';

/** One array of an `.npy` file. */
export interface NpyArray {
  /** NumPy's dtype string, e.g. `<f4`, `<i8`, `|u1`. */
  dtype: string;
  shape: number[];
  /** The values in C order, as float32. */
  data: Float32Array;
}

type Reader = (view: DataView, offset: number, little: boolean) => number;

const READERS: Record<string, [number, Reader]> = {
  f4: [4, (v, o, le) => v.getFloat32(o, le)],
  f8: [8, (v, o, le) => v.getFloat64(o, le)],
  i1: [1, (v, o) => v.getInt8(o)],
  u1: [1, (v, o) => v.getUint8(o)],
  b1: [1, (v, o) => v.getUint8(o)],
  i2: [2, (v, o, le) => v.getInt16(o, le)],
  u2: [2, (v, o, le) => v.getUint16(o, le)],
  i4: [4, (v, o, le) => v.getInt32(o, le)],
  u4: [4, (v, o, le) => v.getUint32(o, le)],
  i8: [8, (v, o, le) => Number(v.getBigInt64(o, le))],
  u8: [8, (v, o, le) => Number(v.getBigUint64(o, le))],
};

/** Parses the bytes of one `.npy` file; `name` names it in errors. */
export function parseNpy(bytes: Uint8Array, name: string): NpyArray {
  const bad = (problem: string) => new DatasetFormatError(name, problem);
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw bad('is not a NumPy .npy array');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = Buffer.from(bytes.subarray(start, start + headerLength)).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw bad(`has an unreadable header ${header}`);
  if (fortran === 'True') throw bad('is in Fortran order; save it with np.ascontiguousarray');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const reader = READERS[descr.slice(1)];
  if (!reader || !'<|>='.includes(descr[0])) {
    throw bad(`has dtype '${descr}'; expected a float, integer or bool array`);
  }
  const [size, read] = reader;
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  if (bytes.byteLength < offset + count * size) {
    throw bad(`is truncated: ${count} values of ${size} bytes announced`);
  }
  const little = descr[0] !== '>';
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = read(view, offset + i * size, little);
  return { dtype: descr, shape, data };
}

/** The entries of a zip archive (enough of the format for NumPy's `np.savez[_compressed]`). */
function unzip(bytes: Uint8Array, file: string): Map<string, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.byteLength - 22; i >= Math.max(0, bytes.byteLength - 65557); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new DatasetFormatError(file, 'is not a NumPy .npz file (no zip directory)');
  const entries = new Map<string, Uint8Array>();
  let p = view.getUint32(end + 16, true);
  const count = view.getUint16(end + 10, true);
  for (let k = 0; k < count; k++) {
    if (view.getUint32(p, true) !== 0x02014b50) {
      throw new DatasetFormatError(file, 'has a corrupt zip directory');
    }
    const method = view.getUint16(p + 10, true);
    const compressed = view.getUint32(p + 20, true);
    const nameLength = view.getUint16(p + 28, true);
    const extra = view.getUint16(p + 30, true);
    const comment = view.getUint16(p + 32, true);
    const local = view.getUint32(p + 42, true);
    const name = Buffer.from(bytes.subarray(p + 46, p + 46 + nameLength)).toString('utf8');
    const dataStart =
      local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const raw = bytes.subarray(dataStart, dataStart + compressed);
    if (method !== 0 && method !== 8) {
      throw new DatasetFormatError(file, `entry '${name}' uses zip method ${method}`);
    }
    entries.set(name, method === 0 ? raw : new Uint8Array(inflateRawSync(raw)));
    p += 46 + nameLength + extra + comment;
  }
  return entries;
}

/** Reads every array of an `.npz` file, by name (without `.npy`). */
export function readNpz(file: string): Map<string, NpyArray> {
  if (!fs.existsSync(file)) {
    throw new DatasetNotFoundError(`npz: ${file} does not exist`, [file]);
  }
  const bytes = new Uint8Array(fs.readFileSync(file));
  const arrays = new Map<string, NpyArray>();
  for (const [name, content] of unzip(bytes, file)) {
    if (!name.endsWith('.npy')) continue;
    arrays.set(name.slice(0, -4), parseNpy(content, `${file}:${name}`));
  }
  return arrays;
}
