import { Writable } from 'stream';
import type { CliIo } from '../../cli/main';

/**
 * A `CliIo` that keeps what a CLI call writes: its result lines (`out`), its errors (`err`) and
 * its progress display's lines (`progress`, each also handed to `onProgressLine`).
 */
export function captureCli(onProgressLine?: (line: string) => void) {
  const out: string[] = [];
  const err: string[] = [];
  const progress: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        progress.push(line);
        onProgressLine?.(line);
      }
      done();
    },
  });
  const io: CliIo = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    progressStream: stream,
    tty: false,
  };
  return { io, out, err, progress };
}
