import * as cliProgress from 'cli-progress';

/** One counted piece of work (an epoch's batches, an analysis' steps). */
export interface ProgressTask {
  /** Sets how much is done (0…total), with a short status text (e.g. the loss). */
  update(done: number, status?: string): void;
  /** Ends the task; `summary` is printed as its final line. */
  finish(summary?: string): void;
}

/** Progress display: bars on a terminal, plain periodic lines elsewhere. */
export interface Progress {
  /** Starts a task of `total` units (`unit` in the plural, e.g. `batches`). */
  task(label: string, total: number, unit: string): ProgressTask;
  /** Prints a line (above the bars on a terminal). */
  log(line: string): void;
  /** Stops every bar. */
  close(): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Where to write; default `process.stderr`. */
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Draw bars (true) or print plain lines (false); default: whether `stream` is a terminal. */
  tty?: boolean;
  /** Plain mode: the shortest time between two lines of one task, in ms; default 10 000. */
  intervalMs?: number;
  /** Print nothing (tasks still work); default false. */
  silent?: boolean;
}

/** `12s`, `3m 04s`, `1h 02m`. */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatRate(done: number, seconds: number, unit: string): string {
  if (seconds <= 0 || done <= 0) return `? ${unit}/s`;
  const rate = done / seconds;
  return `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)} ${unit}/s`;
}

/** The plain line of a task: counts, percentage, rate and ETA. */
export function plainLine(
  label: string,
  done: number,
  total: number,
  unit: string,
  seconds: number,
  status?: string,
): string {
  const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
  const eta = done > 0 ? ((total - done) * seconds) / done : NaN;
  return (
    `${label}: ${done}/${total} ${unit} (${pct}%), ${formatRate(done, seconds, unit)}, ` +
    `ETA ${formatSeconds(eta)}${status ? `, ${status}` : ''}`
  );
}

class PlainProgress implements Progress {
  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs: number,
  ) {}

  task(label: string, total: number, unit: string): ProgressTask {
    const started = Date.now();
    let lastLine = started;
    let finished = false;
    let last = { done: 0, status: undefined as string | undefined };
    return {
      update: (done, status) => {
        last = { done, status };
        const now = Date.now();
        if (!finished && now - lastLine >= this.intervalMs && done < total) {
          lastLine = now;
          this.write(plainLine(label, done, total, unit, (now - started) / 1000, status));
        }
      },
      finish: (summary) => {
        if (finished) return;
        finished = true;
        const seconds = (Date.now() - started) / 1000;
        this.write(
          `${label}: ${last.done}/${total} ${unit} in ${formatSeconds(seconds)}` +
            (summary ? `; ${summary}` : ''),
        );
      },
    };
  }

  log(line: string): void {
    this.write(line);
  }

  close(): void {}
}

class BarProgress implements Progress {
  private readonly bars: cliProgress.MultiBar;
  private active = 0;

  constructor(private readonly stream: NodeJS.WritableStream) {
    this.bars = new cliProgress.MultiBar(
      {
        stream,
        format: '{label} |{bar}| {value}/{total} {unit} | {rate} | ETA {eta_formatted} {status}',
        hideCursor: true,
        clearOnComplete: true,
        stopOnComplete: false,
        etaBuffer: 20,
        fps: 5,
        forceRedraw: false,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  task(label: string, total: number, unit: string): ProgressTask {
    const started = Date.now();
    const bar = this.bars.create(total, 0, { label, unit, rate: '', status: '' });
    this.active++;
    let finished = false;
    let done = 0;
    return {
      update: (value, status) => {
        done = value;
        const seconds = (Date.now() - started) / 1000;
        bar.update(value, { rate: formatRate(value, seconds, unit), status: status ?? '' });
      },
      finish: (summary) => {
        if (finished) return;
        finished = true;
        bar.stop();
        this.bars.remove(bar);
        // With no bar left, stop redrawing so that lines go straight to the stream.
        if (--this.active === 0) this.bars.stop();
        const seconds = (Date.now() - started) / 1000;
        this.log(
          `${label}: ${done}/${total} ${unit} in ${formatSeconds(seconds)}` +
            (summary ? `; ${summary}` : ''),
        );
      },
    };
  }

  log(line: string): void {
    if (this.active > 0) this.bars.log(`${line}\n`);
    else this.stream.write(`${line}\n`);
  }

  close(): void {
    this.bars.stop();
  }
}

/**
 * Creates the progress display: `cli-progress` bars with counts, rate and ETA when the stream is
 * a terminal; otherwise (CI, logs) plain lines, at most one per task every `intervalMs`, and one
 * when each task ends.
 */
export function createProgress(options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.silent) return new PlainProgress(() => {}, Infinity);
  const tty = options.tty ?? Boolean((stream as NodeJS.WriteStream).isTTY);
  if (tty) return new BarProgress(stream);
  return new PlainProgress((line) => stream.write(`${line}\n`), options.intervalMs ?? 10_000);
}
