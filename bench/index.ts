/**
 * `npm run bench` → `node dist/bench/index.js [name] [--options]`: runs every bench in order, or
 * the one named. A bench is a file `bench/<name>.ts` exporting `bench` (see `lib/bench.ts`); the
 * names below are looked for in this order, and a missing file is skipped when running them all.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Bench } from './lib/bench';

/** The benches of `npm run bench`, in the order they run. */
export const BENCH_NAMES = ['backend', 'analysis', 'models', 'shards'] as const;

function benchFile(name: string): string | undefined {
  for (const ext of ['.js', '.ts']) {
    const file = path.join(__dirname, name + ext);
    if (fs.existsSync(file)) return file;
  }
  return undefined;
}

/** Loads the bench called `name`, or undefined when its file does not exist. */
export function loadBench(name: string): Bench | undefined {
  const file = benchFile(name);
  if (!file) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(file) as { bench?: Bench };
  if (!mod.bench || typeof mod.bench.run !== 'function') {
    throw new Error(`${file} must export 'bench' (see bench/lib/bench.ts)`);
  }
  return mod.bench;
}

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first !== undefined && !first.startsWith('--')) {
    const bench = loadBench(first);
    if (!bench) {
      const available = BENCH_NAMES.filter((n) => benchFile(n));
      throw new Error(
        `no bench '${first}' (bench/${first}.ts); available: ${available.join(', ')}`,
      );
    }
    await bench.run(rest);
    return;
  }
  if (first !== undefined)
    throw new Error('options need a bench name first, e.g. `backend --repeats=7`');
  for (const name of BENCH_NAMES) {
    const bench = loadBench(name);
    if (!bench) continue;
    console.log(`\n=== bench ${bench.name}: ${bench.description}\n`);
    await bench.run([]);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
