/**
 * The `work` option of {@link analyze}: which (parameter, filter) sweeps a run computes (one
 * shard of an analysis). Everything else a report holds (reference accuracies, depths, evaluated
 * counts) is computed as in the full analysis, so shards merge into the unsharded report.
 */
import type { FilterId } from './types';

/** One (parameter, filter) sweep of an analysis. */
export interface WorkItem {
  /** The weight's tfjs name, or {@link GLOBAL_PARAMETER} in global mode. */
  parameter: string;
  filter: FilterId;
}

/** The name of the single "parameter" of a global-mode analysis. */
export const GLOBAL_PARAMETER = '(global)';

/**
 * The filters to sweep for each parameter (in the options' filter order): every filter without
 * `work`. Throws, naming the item, when `work` names a parameter or filter the analysis does not
 * cover, or names a sweep twice.
 */
export function workFilters(
  work: ReadonlyArray<WorkItem> | undefined,
  parameters: readonly string[],
  filters: readonly FilterId[],
): (parameter: string) => FilterId[] {
  if (work === undefined) return () => [...filters];
  const chosen = new Map<string, Set<FilterId>>();
  for (const item of work) {
    const what = `analyze: option 'work' item ${JSON.stringify(item)}`;
    if (!parameters.includes(item.parameter)) {
      throw new Error(
        `${what} names a parameter the analysis does not cover; it covers ${parameters.join(', ')}`,
      );
    }
    if (!filters.includes(item.filter)) {
      throw new Error(`${what} names a filter not in option 'filters' (${filters.join(', ')})`);
    }
    const set = chosen.get(item.parameter) ?? new Set<FilterId>();
    if (set.has(item.filter)) throw new Error(`${what} is listed twice`);
    chosen.set(item.parameter, set.add(item.filter));
  }
  return (parameter) => filters.filter((f) => chosen.get(parameter)?.has(f));
}
