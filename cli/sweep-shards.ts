/**
 * Sharded sweeps from the command line: `npm run reproduce -- … --shard i/n` (or `--shards n`
 * with JOB_COMPLETION_INDEX, parsed as `analyze`'s) runs shard i's (system, seed) runs into
 * `<out>/reproduce-shard-<i>-of-<n>/` and writes its `sweep-shard.json`; `tfjs-antifragile
 * merge <shard folders…> --out <dir>` recognises those folders and writes the results of the
 * unsharded run (results.json, results.md, compare.html) from the shards' run folders. With
 * MLFLOW_TRACKING_URI the shards' runs hang under one parent run found by a tag derived from
 * the sweep (as analysis shards do); the merge logs the summary to it and ends it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ShardMergeError, type ShardId } from '../src/analysis/shards';
import { shardParentRun } from '../src/experiment/shard-tracking';
import { summarizeSweep } from '../src/experiment/summary';
import type { Recipe } from '../src/experiment/schema';
import { timestamp } from '../src/experiment/run-folder';
import {
  isSweepShardFolder,
  mergeSweepShards,
  readSweepShard,
  sweepKey,
  sweepShardFolder,
  writeSweepShard,
  type SweepFingerprint,
} from '../src/experiment/sweep-shards';
import { MlflowClient } from '../src/mlflow';
import { shardArgument } from './shards';
import type { Values } from './analyze';
import { EXIT, type CliIo } from './main';
import {
  comparePage,
  summaryMetrics,
  writeResults,
  type ReproduceOptions,
  type Sweep,
} from './reproduce';

export { isSweepShardFolder };

/** `--shard i/n`, or `--shards n` with JOB_COMPLETION_INDEX, as `analyze` reads them. */
export function shardArgumentOf(values: {
  shard?: unknown;
  shards?: unknown;
}): ShardId | undefined {
  const pick = (v: unknown) => (v === undefined ? undefined : String(v));
  return shardArgument({ shard: pick(values.shard), shards: pick(values.shards) } as Values);
}

/** A running sweep shard: its folder, its MLflow parent, and how it records its outcome. */
export interface SweepShardRun {
  dir: string;
  parent?: { runId: string };
  finish(sweep: Sweep, work: number[], log: (line: string) => void): void;
}

function fingerprintOf(options: ReproduceOptions, recipes: Recipe[]): SweepFingerprint {
  return {
    recipes,
    seeds: options.seeds,
    overrides: options.overrides ?? [],
    experiment: options.experiment ?? 'reproduce',
  };
}

/** The sweep's MLflow parent run (found by its tag, created by the first shard); else undefined. */
async function sweepParent(
  fingerprint: SweepFingerprint,
  count: number,
  log: (line: string) => void,
): Promise<string | undefined> {
  if (!process.env.MLFLOW_TRACKING_URI) return undefined;
  try {
    return await shardParentRun(
      new MlflowClient(),
      fingerprint.experiment,
      sweepKey(fingerprint, count),
      `reproduce-shards-${count}`,
      'npm run reproduce --shard',
    );
  } catch (err) {
    log(`MLflow: no parent run (${(err as Error).message}); the runs go on without MLflow nesting`);
    return undefined;
  }
}

/**
 * Prepares shard `shard` of a sweep: its folder (a rerun's manifest removed first, so a dead
 * shard never looks finished) and its MLflow parent run.
 */
export async function startSweepShard(
  options: ReproduceOptions,
  recipes: Recipe[],
  shard: ShardId,
  log: (line: string) => void,
): Promise<SweepShardRun> {
  const dir = path.resolve(options.outDir ?? 'runs', sweepShardFolder(shard));
  fs.rmSync(path.join(dir, 'sweep-shard.json'), { force: true });
  const fingerprint = fingerprintOf(options, recipes);
  const runId = await sweepParent(fingerprint, shard.count, log);
  const started = Date.now();
  return {
    dir,
    parent: runId ? { runId } : undefined,
    finish(sweep, work, say) {
      const file = writeSweepShard(dir, {
        kind: 'tfjs-antifragile/sweep-shard',
        version: 1,
        shard,
        fingerprint,
        recipeFiles: options.recipes,
        command: options.command,
        status: sweep.status,
        work,
        runs: sweep.runs.map((r) => path.relative(dir, r)),
        entries: sweep.entries,
        seconds: (Date.now() - started) / 1000,
      });
      say(`shard ${shard.index}/${shard.count} (${sweep.status}): ${file}`);
    },
  };
}

/** The merged sweep's summary and files on its MLflow parent run, which then ends. */
async function endSweepParent(
  sweep: Sweep,
  fingerprint: SweepFingerprint,
  count: number,
  io: CliIo,
) {
  const runId = await sweepParent(fingerprint, count, (l) => io.err(l));
  if (!runId) return;
  const client = new MlflowClient();
  try {
    const summaries = summarizeSweep(sweep.entries);
    const metrics = summaries.flatMap((s) =>
      Object.entries(summaryMetrics(s)).map(([key, value]) => ({ key, value, step: 0 })),
    );
    await client.logBatch(runId, { metrics });
    for (const file of ['results.md', 'results.json', 'compare.html']) {
      const f = path.join(sweep.dir, file);
      if (fs.existsSync(f))
        await client.logArtifact(runId, file, new Uint8Array(fs.readFileSync(f)));
    }
    await client.setTerminated(runId, 'FINISHED');
    io.out(`MLflow: results logged to the parent run ${runId}, which is now FINISHED`);
  } catch (err) {
    io.err(
      `MLflow: could not log the results to run ${runId} (${(err as Error).message}); the folder has them`,
    );
  }
}

/**
 * `tfjs-antifragile merge <sweep shard folders…> --out <dir>`: checks the shards (exit 2,
 * nothing written, when one is missing, duplicated, unfinished or of another sweep) and writes
 * `<dir>/reproduce-merged-<time>/` with the unsharded run's results.json, results.md and
 * compare.html.
 */
export async function mergeSweep(
  folders: string[],
  out: string | undefined,
  io: CliIo,
): Promise<number> {
  let merged;
  try {
    merged = mergeSweepShards(folders.map((dir) => ({ dir, manifest: readSweepShard(dir) })));
  } catch (err) {
    if (!(err instanceof ShardMergeError)) throw err;
    io.err(err.message);
    return EXIT.usage;
  }
  const { first } = merged;
  const fingerprint = first.fingerprint;
  const options: ReproduceOptions = {
    recipes: first.recipeFiles,
    seeds: fingerprint.seeds,
    overrides: fingerprint.overrides,
    experiment: fingerprint.experiment,
    command: first.command?.replace(/ --shards? \S+/, ''),
  };
  const dir = path.resolve(out ?? 'runs', `reproduce-merged-${timestamp()}`);
  fs.mkdirSync(dir, { recursive: true });
  const sweep: Sweep = {
    dir,
    recipes: fingerprint.recipes,
    status: 'finished',
    runs: merged.runs,
    entries: merged.entries,
    started: Date.now() - merged.seconds * 1000,
  };
  await comparePage(sweep, (l) => io.out(l));
  writeResults(options, sweep, summarizeSweep(sweep.entries));
  if (process.env.MLFLOW_TRACKING_URI)
    await endSweepParent(sweep, fingerprint, first.shard.count, io);
  io.out(`merged ${folders.length} sweep shards: ${path.relative(process.cwd(), dir) || dir}`);
  return EXIT.ok;
}
