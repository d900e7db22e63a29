/**
 * Sharded analysis: the (parameter × filter) sweeps of an analysis split into `count`
 * deterministic shards balanced by estimated cost, and the shards' partial reports merged back
 * into the report the unsharded analysis gives, value for value. Pure (no I/O): the CLI reads
 * and writes the partials, MLflow or a shared folder carries them.
 */
import * as tf from '@tensorflow/tfjs';
import { GraphRunner } from './graph';
import { resolveAnalyzeOptions, reportOptions, type AnalyzeOptions } from './options';
import type { ResolvedAnalysisOptions } from './options';
import { selectParameters } from './parameters';
import type { AnalysisReport, ParameterResult } from './types';
import { GLOBAL_PARAMETER, type WorkItem } from './work';

/** A sweep of the plan with its estimated cost (multiply-adds, relative). */
export interface PlannedWork extends WorkItem {
  cost: number;
}

/** Which shard of how many: `index` in 0…count−1. */
export interface ShardId {
  index: number;
  count: number;
}

/** What a shard writes: its sweeps' results and what it must agree on with the other shards. */
export interface ShardPartial {
  kind: 'tfjs-antifragile/analysis-shard';
  version: 1;
  shard: ShardId;
  /** Content hashes of the model and the data, and the analysis options (without `work`). */
  fingerprint: { model: string; data: string; options: ResolvedAnalysisOptions };
  /** Every sweep of the analysis, in report order (the same in every shard). */
  plan: WorkItem[];
  /** This shard's sweeps. */
  work: WorkItem[];
  /** The report of this shard's sweeps; null when the shard got none (more shards than sweeps). */
  report: AnalysisReport | null;
  /** Where the model and data came from (provenance; not compared). */
  inputs?: Record<string, string>;
}

/** A set of partials that cannot be merged: missing, duplicated or mismatched shards. */
export class ShardMergeError extends Error {
  override name = 'ShardMergeError';
}

/** Multiply-adds of one layer call, estimated from its weights and output shape. */
function layerFlops(layer: tf.layers.Layer): number {
  const shape = layer.outputShape as (number | null)[] | (number | null)[][];
  const out = (Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[];
  const dims = out.slice(1).map((d) => d ?? 1);
  const elements = dims.reduce((a, b) => a * b, 1);
  const positions = dims.length > 1 ? elements / dims[dims.length - 1] : 1;
  return layer.countParams() * positions + elements;
}

/**
 * Every (parameter, filter) sweep of an analysis with its estimated cost: steps × the FLOPs a
 * step runs (the suffix of the graph from the ablated layer with a fixed adversarial set; the
 * whole model, forward and input gradient, when the attack is regenerated).
 */
export function shardPlan(model: tf.LayersModel, options: AnalyzeOptions): PlannedWork[] {
  const opts = resolveAnalyzeOptions({ ...options, work: undefined });
  const params = selectParameters(model, opts.parameters);
  const total = model.layers.reduce((s, l) => s + layerFlops(l), 0);
  const runner = new GraphRunner(model);
  const perStep = (layer: tf.layers.Layer) =>
    opts.regenerate || opts.mode === 'global'
      ? 3 * total
      : runner.split(layer).suffix.reduce((s, n) => s + layerFlops(n.layer), 0);
  const targets =
    opts.mode === 'global'
      ? [{ name: GLOBAL_PARAMETER, cost: perStep(params[0].layer) }]
      : params.map((p) => ({ name: p.name, cost: perStep(p.layer) }));
  return targets.flatMap((t) =>
    opts.filters.map((filter) => ({ parameter: t.name, filter, cost: t.cost * opts.steps })),
  );
}

/** The analysis options a partial records (resolved, `work` left out). */
export function shardOptions(model: tf.LayersModel, options: AnalyzeOptions) {
  const opts = resolveAnalyzeOptions({ ...options, work: undefined });
  const names = selectParameters(model, opts.parameters).map((p) => p.name);
  return reportOptions(opts, names);
}

/**
 * The sweeps of shard `index` of `count`: longest-processing-time-first assignment (each sweep,
 * costliest first, to the least-loaded shard; ties to the lower index), then in plan order.
 * Deterministic: every shard computes the same split from the same plan.
 */
export function shardWork(plan: PlannedWork[], shard: ShardId): WorkItem[] {
  checkShardId(shard);
  const load = new Array<number>(shard.count).fill(0);
  const owner = new Array<number>(plan.length);
  const order = plan.map((_, i) => i).sort((a, b) => plan[b].cost - plan[a].cost || a - b);
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < shard.count; s++) if (load[s] < load[best]) best = s;
    owner[i] = best;
    load[best] += plan[i].cost;
  }
  return plan
    .filter((_, i) => owner[i] === shard.index)
    .map(({ parameter, filter }) => ({ parameter, filter }));
}

/** Throws unless `index` is an integer in 0…count−1 and `count` ≥ 1. */
export function checkShardId(shard: ShardId): void {
  const { index, count } = shard;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index)) {
    throw new Error(`shard: expected integers i/n with n ≥ 1; got ${index}/${count}`);
  }
  if (index < 0 || index >= count) {
    throw new Error(`shard: index ${index} is outside 0…${count - 1} (of ${count} shards)`);
  }
}

/** "i/n" → {index, count}; throws naming the text. */
export function parseShardId(text: string): ShardId {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`shard: expected i/n (e.g. 0/4); got '${text}'`);
  const shard = { index: Number(m[1]), count: Number(m[2]) };
  checkShardId(shard);
  return shard;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Checks a set of partials: one per index, all of one analysis; returns them by index. */
function checkPartials(partials: Array<{ source: string; partial: ShardPartial }>) {
  if (partials.length === 0) throw new ShardMergeError('merge: no shards given');
  for (const { source, partial } of partials) {
    if (partial?.kind !== 'tfjs-antifragile/analysis-shard' || partial.version !== 1) {
      throw new ShardMergeError(`merge: ${source} is not a shard partial (kind ${partial?.kind})`);
    }
  }
  const first = partials[0];
  const { count } = first.partial.shard;
  const byIndex = new Array<{ source: string; partial: ShardPartial } | undefined>(count);
  for (const entry of partials) {
    const { source, partial } = entry;
    for (const key of ['model', 'data', 'options'] as const) {
      if (!same(partial.fingerprint[key], first.partial.fingerprint[key])) {
        throw new ShardMergeError(
          `merge: ${source} is a shard of another analysis: its ${key} differs from ${first.source}'s` +
            (key === 'options'
              ? ''
              : ` (${partial.fingerprint[key]} ≠ ${first.partial.fingerprint[key]})`),
        );
      }
    }
    if (partial.shard.count !== count) {
      throw new ShardMergeError(
        `merge: ${source} is shard ${partial.shard.index}/${partial.shard.count} but ${first.source} is one of ${count}`,
      );
    }
    if (!same(partial.plan, first.partial.plan)) {
      throw new ShardMergeError(`merge: ${source} has another plan of sweeps than ${first.source}`);
    }
    const other = byIndex[partial.shard.index];
    if (other) {
      throw new ShardMergeError(
        `merge: shard ${partial.shard.index}/${count} is given twice: ${other.source} and ${source}`,
      );
    }
    byIndex[partial.shard.index] = entry;
  }
  const missing = [...byIndex.keys()].filter((i) => !byIndex[i]);
  if (missing.length > 0) {
    throw new ShardMergeError(
      `merge: shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} missing (have ${partials.map((p) => p.source).join(', ')})`,
    );
  }
  return byIndex as Array<{ source: string; partial: ShardPartial }>;
}

/** The report of one shard, checked against the sweeps it claims and the first report. */
function checkReport(
  entry: { source: string; partial: ShardPartial },
  base: AnalysisReport | undefined,
): AnalysisReport | undefined {
  const { source, partial } = entry;
  const report = partial.report;
  const done = (report?.parameters ?? []).flatMap((p) =>
    Object.keys(p.filters).map((filter) => ({ parameter: p.name, filter })),
  );
  if (!same(done, partial.work)) {
    throw new ShardMergeError(`merge: ${source} does not hold the sweeps its work list names`);
  }
  if (!report || !base) return report ?? base;
  for (const key of ['reference', 'examples', 'options'] as const) {
    if (!same(report[key], base[key])) {
      throw new ShardMergeError(`merge: ${source} measured another ${key} than the other shards`);
    }
  }
  return base;
}

/**
 * Merges the partials of all `count` shards of one analysis into the report of the unsharded
 * analysis: the same values in the same order; `seconds` is the longest shard's. Throws a
 * {@link ShardMergeError} naming the shard when one is missing, given twice, or belongs to
 * another analysis (model, data, options, shard count).
 */
export function mergeShards(
  partials: Array<{ source: string; partial: ShardPartial }>,
): AnalysisReport {
  const shards = checkPartials(partials);
  let base: AnalysisReport | undefined;
  for (const entry of shards) base = checkReport(entry, base);
  if (!base) throw new ShardMergeError('merge: no shard holds any sweep');
  const results = new Map<string, ParameterResult>();
  for (const { source, partial } of shards) {
    for (const p of partial.report?.parameters ?? []) {
      const seen = results.get(p.name);
      if (!seen) {
        results.set(p.name, { ...p, filters: { ...p.filters } });
        continue;
      }
      const { filters: _f, ...rest } = p;
      const { filters: _g, ...seenRest } = seen;
      if (!same(rest, seenRest)) {
        throw new ShardMergeError(`merge: ${source} describes parameter ${p.name} differently`);
      }
      Object.assign(seen.filters, p.filters);
    }
  }
  const order = [...new Set(shards[0].partial.plan.map((w) => w.parameter))];
  const parameters = order.map((name) => {
    const p = results.get(name) as ParameterResult;
    const filters: ParameterResult['filters'] = {};
    for (const f of base.options.filters) if (p.filters[f]) filters[f] = p.filters[f];
    return { ...p, filters };
  });
  const seconds = Math.max(...shards.map((s) => s.partial.report?.seconds ?? 0));
  return { ...base, parameters, seconds };
}
