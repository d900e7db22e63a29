/**
 * Sharded sweeps (`npm run reproduce -- --shard i/n`): the (system × seed) runs of a
 * reproduction split into `count` deterministic shards, each shard's outcome written as a
 * manifest (`sweep-shard.json`) in its own folder, and the manifests checked and put back in
 * the unsharded order for the merge. The split is round-robin over the system-major list of
 * runs (run k goes to shard k mod n): each system's seeds are spread over the shards, so shards
 * get about the same mix of cheap and expensive systems.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ShardId } from '../analysis/shards';
import { ShardMergeError } from '../analysis/shards';
import { shardKey } from './fingerprint';
import type { Recipe } from './schema';
import type { SweepEntry } from './summary';

/** File name of a sweep shard's manifest, in its folder. */
export const SWEEP_SHARD_FILE = 'sweep-shard.json';

/** One run of a sweep: a recipe file and a seed. */
export interface SweepRun {
  recipe: string;
  seed: number;
}

/** What every shard of one sweep must agree on. */
export interface SweepFingerprint {
  /** The recipes as resolved with the sweep's overrides (not their file paths). */
  recipes: Recipe[];
  seeds: number[];
  overrides: string[];
  experiment: string;
}

/** What a sweep shard writes when it is done. */
export interface SweepShard {
  kind: 'tfjs-antifragile/sweep-shard';
  version: 1;
  shard: ShardId;
  fingerprint: SweepFingerprint;
  /** The recipe files as given (provenance, and the merged results' `recipes`). */
  recipeFiles: string[];
  /** The command line of the shard. */
  command?: string;
  status: 'finished' | 'killed' | 'failed';
  /** Positions in the sweep's plan of this shard's runs. */
  work: number[];
  /** This shard's run folders, relative to the shard folder, in the order of `work`. */
  runs: string[];
  /** This shard's comparisons, in the order of `work`. */
  entries: SweepEntry[];
  /** Wall-clock seconds of the shard. */
  seconds: number;
}

/** Every run of a sweep in the unsharded order: system by system, seed by seed. */
export function sweepPlan(recipes: string[], seeds: number[]): SweepRun[] {
  return recipes.flatMap((recipe) => seeds.map((seed) => ({ recipe, seed })));
}

/** Positions in `plan` of shard `shard`'s runs (round-robin). */
export function sweepShardWork(plan: SweepRun[], shard: ShardId): number[] {
  return plan.map((_, k) => k).filter((k) => k % shard.count === shard.index);
}

/** The folder (under `--out`) of shard `shard`: fixed, so that a rerun replaces its manifest. */
export function sweepShardFolder(shard: ShardId): string {
  return `reproduce-shard-${shard.index}-of-${shard.count}`;
}

/** The key of a sharded sweep's MLflow parent run (tag `tfjs_antifragile.shard_key`). */
export function sweepKey(fingerprint: SweepFingerprint, count: number): string {
  return shardKey({ kind: 'sweep', ...fingerprint }, count);
}

/** Writes a shard's manifest atomically (a crash leaves none or a whole one). */
export function writeSweepShard(dir: string, manifest: SweepShard): string {
  const file = path.join(dir, SWEEP_SHARD_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(manifest, null, 2));
  fs.renameSync(tmp, file);
  return file;
}

/** Whether `dir` is a sweep shard's folder (holds a manifest). */
export function isSweepShardFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, SWEEP_SHARD_FILE));
}

/** Reads a shard folder's manifest; throws naming the folder. */
export function readSweepShard(dir: string): SweepShard {
  const file = path.join(dir, SWEEP_SHARD_FILE);
  if (!fs.existsSync(file)) {
    throw new ShardMergeError(
      `merge: ${dir} holds no ${SWEEP_SHARD_FILE} (not a sweep shard's folder, or the shard has not finished)`,
    );
  }
  let manifest: SweepShard;
  try {
    manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as SweepShard;
  } catch (err) {
    throw new ShardMergeError(`merge: ${file} is not valid JSON (${(err as Error).message})`);
  }
  if (manifest?.kind !== 'tfjs-antifragile/sweep-shard' || manifest.version !== 1) {
    throw new ShardMergeError(`merge: ${file} is not a sweep shard manifest (version 1)`);
  }
  return manifest;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The merged sweep: every run folder and entry, in the unsharded order. */
export interface MergedSweep {
  first: SweepShard;
  /** Absolute run folders in plan order. */
  runs: string[];
  entries: SweepEntry[];
  /** The slowest shard's seconds. */
  seconds: number;
}

/**
 * Checks the shards of one sweep (one per index, all finished, all of the same sweep and
 * count) and puts their runs in the unsharded order.
 * @throws ShardMergeError naming the missing, duplicated, unfinished or foreign shard.
 */
export function mergeSweepShards(
  shards: Array<{ dir: string; manifest: SweepShard }>,
): MergedSweep {
  if (shards.length === 0) throw new ShardMergeError('merge: no sweep shards given');
  const first = shards[0].manifest;
  const count = first.shard.count;
  const byIndex = new Map<number, string>();
  for (const { dir, manifest } of shards) {
    const name = `shard ${manifest.shard.index}/${manifest.shard.count} (${dir})`;
    if (manifest.shard.count !== count) {
      throw new ShardMergeError(
        `merge: ${name} is one of ${manifest.shard.count} shards; ${shards[0].dir} is one of ${count}`,
      );
    }
    if (!same(manifest.fingerprint, first.fingerprint)) {
      throw new ShardMergeError(
        `merge: ${name} is a shard of another sweep (recipes, seeds, overrides or experiment differ from ${shards[0].dir}'s)`,
      );
    }
    const seen = byIndex.get(manifest.shard.index);
    if (seen !== undefined)
      throw new ShardMergeError(`merge: ${name} is duplicated (also ${seen})`);
    if (manifest.status !== 'finished') {
      throw new ShardMergeError(`merge: ${name} is ${manifest.status}: rerun it`);
    }
    const plan = sweepPlan(
      first.fingerprint.recipes.map((r) => r.name),
      first.fingerprint.seeds,
    );
    const work = sweepShardWork(plan, manifest.shard);
    if (!same(manifest.work, work) || manifest.entries.length !== work.length) {
      throw new ShardMergeError(
        `merge: ${name} holds ${manifest.entries.length} runs at positions [${manifest.work.join(', ')}]; expected [${work.join(', ')}]`,
      );
    }
    byIndex.set(manifest.shard.index, dir);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length) {
    throw new ShardMergeError(
      `merge: missing shard(s) ${missing.map((i) => `${i}/${count}`).join(', ')} of ${count}`,
    );
  }
  const total = first.fingerprint.recipes.length * first.fingerprint.seeds.length;
  const runs: string[] = new Array<string>(total);
  const entries: SweepEntry[] = new Array<SweepEntry>(total);
  for (const { dir, manifest } of shards) {
    manifest.work.forEach((k, j) => {
      runs[k] = path.resolve(dir, manifest.runs[j]);
      entries[k] = manifest.entries[j];
    });
  }
  const seconds = Math.max(...shards.map((s) => s.manifest.seconds));
  return { first, runs, entries, seconds };
}
