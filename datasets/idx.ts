import { DatasetFormatError } from './errors';

/** An IDX array of unsigned bytes (the format of the MNIST files): its dimensions and data. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

/**
 * Parses an IDX file of unsigned bytes with `expectedDims` dimensions (3 for images, 1 for
 * labels): a 4-byte magic number (0, 0, type 0x08, number of dimensions), the sizes as
 * big-endian 32-bit integers, then the bytes. A wrong magic number, a truncated file or
 * trailing bytes are {@link DatasetFormatError}s naming `file`.
 */
export function parseIdx(file: string, bytes: Uint8Array, expectedDims: number): IdxArray {
  const kind = expectedDims === 1 ? 'labels' : 'images';
  if (bytes.length < 4) {
    throw new DatasetFormatError(
      file,
      `is truncated: ${bytes.length} bytes, fewer than the 4-byte IDX header`,
    );
  }
  const [zero1, zero2, type, ndims] = bytes;
  if (zero1 !== 0 || zero2 !== 0 || type !== UBYTE || ndims !== expectedDims) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    const wanted = `0000080${expectedDims}`;
    throw new DatasetFormatError(
      file,
      `is not an IDX file of ${kind}: magic number 0x${magic}, expected 0x${wanted} ` +
        `(unsigned bytes, ${expectedDims} dimension${expectedDims > 1 ? 's' : ''})`,
    );
  }
  const header = 4 + 4 * ndims;
  if (bytes.length < header) {
    throw new DatasetFormatError(
      file,
      `is truncated: ${bytes.length} bytes, the header alone needs ${header}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = header + dims.reduce((n, d) => n * d, 1);
  if (bytes.length < expected) {
    throw new DatasetFormatError(
      file,
      `is truncated: the header announces ${dims.join('×')} bytes of ${kind} (${expected} bytes in all), ` +
        `the file has ${bytes.length}`,
    );
  }
  if (bytes.length > expected) {
    throw new DatasetFormatError(
      file,
      `has ${bytes.length - expected} bytes beyond the ${dims.join('×')} announced by its header`,
    );
  }
  return { dims, data: bytes.subarray(header) };
}
