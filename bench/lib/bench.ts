/**
 * One benchmark of `npm run bench`. A bench module is a file `bench/<name>.ts` that exports
 * `bench: Bench`; `bench/index.ts` finds it by name. Loading the module must not start any work.
 */
export interface Bench {
  /** The name on the command line (`node dist/bench/index.js <name>`), same as the file's. */
  name: string;
  /** One line: what it measures. */
  description: string;
  /** Runs the bench, printing its report; `args` are the command-line arguments after its name. */
  run(args: string[]): Promise<void>;
}

/** Reads `--key=value` / `--flag` arguments into a map (`--flag` → `'true'`); rejects others. */
export function parseArgs(args: string[], known: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of args) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match || !known.includes(match[1])) {
      throw new Error(`unknown argument '${arg}'; known: ${known.map((k) => `--${k}`).join(', ')}`);
    }
    out.set(match[1], match[2] ?? 'true');
  }
  return out;
}

/** A positive integer argument, or the default. */
export function intArg(args: Map<string, string>, key: string, fallback: number): number {
  const raw = args.get(key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`--${key} must be a positive integer; got '${raw}'`);
  }
  return value;
}
