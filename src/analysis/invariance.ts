import type { AnalysisReport, FilterId, Label, ParameterResult, ScoreId } from './types';
import { FILTER_IDS, SCORE_IDS } from './types';
import { countLabels, type LabelCounts } from './labels';

/** How parameters of different reports are matched (docs/method.md §6). */
export type InvarianceMatch = 'name' | 'depth';

/** Options of {@link invariance}. */
export interface InvarianceOptions {
  /**
   * `'name'` (default): the same weight name in every report — epochs of one run, or one
   * architecture on several datasets. `'depth'`: across architectures, each parameter of the
   * first report is matched with the parameter of nearest relative depth in each other report.
   */
  match?: InvarianceMatch;
  /** Filters to consider; default every filter present in the first report. */
  filters?: FilterId[];
  /** Scores to consider; default all three. */
  scores?: ScoreId[];
}

/** The labels of one parameter (of the first report) across reports, for one filter and score. */
export interface InvarianceEntry {
  /** The parameter's name in the first report. */
  parameter: string;
  /** Its relative depth in the first report. */
  depth: number;
  /** The names matched in each report, in report order. */
  matched: string[];
  filter: FilterId;
  score: ScoreId;
  /** Its label in each report, in report order. */
  labels: Label[];
  /** True when every report gives the same label. */
  invariant: boolean;
  /** The shared label when invariant. */
  label?: Label;
}

/** The result of {@link invariance}. */
export interface InvarianceReport {
  match: InvarianceMatch;
  reports: number;
  entries: InvarianceEntry[];
  /** Invariant entries per label, per filter and score: `counts[filter][score][label]`. */
  counts: LabelCounts;
}

function nearestByDepth(params: ParameterResult[], depth: number): ParameterResult {
  let best = params[0];
  for (const p of params) if (Math.abs(p.depth - depth) < Math.abs(best.depth - depth)) best = p;
  return best;
}

/**
 * Which parameters keep their label across reports (docs/method.md §6): across the epochs of one
 * run or across datasets (matched by name), or across architectures (matched by depth).
 */
export function invariance(
  reports: readonly AnalysisReport[],
  options: InvarianceOptions = {},
): InvarianceReport {
  if (reports.length === 0) throw new Error('invariance: needs at least one report');
  const match = options.match ?? 'name';
  if (match !== 'name' && match !== 'depth') {
    throw new Error(`invariance: option 'match' must be 'name' or 'depth'; got '${String(match)}'`);
  }
  const first = reports[0];
  const filters =
    options.filters ?? FILTER_IDS.filter((f) => first.parameters.some((p) => p.filters[f]));
  const scores = options.scores ?? [...SCORE_IDS];
  const entries: InvarianceEntry[] = [];
  for (const param of first.parameters) {
    const matched = reports.map((r, i) => {
      if (i === 0) return param;
      if (match === 'depth') return nearestByDepth(r.parameters, param.depth);
      const found = r.parameters.find((p) => p.name === param.name);
      if (!found) {
        throw new Error(
          `invariance: parameter '${param.name}' is missing from report ${i}` +
            ` (use match: 'depth' to compare different architectures)`,
        );
      }
      return found;
    });
    for (const filter of filters) {
      for (const score of scores) {
        const labels = matched.map((p, i) => {
          const result = p.filters[filter];
          if (!result)
            throw new Error(`invariance: report ${i} has no '${filter}' sweep for '${p.name}'`);
          return result.labels[score];
        });
        const invariant = labels.every((l) => l === labels[0]);
        entries.push({
          parameter: param.name,
          depth: param.depth,
          matched: matched.map((p) => p.name),
          filter,
          score,
          labels,
          invariant,
          ...(invariant ? { label: labels[0] } : {}),
        });
      }
    }
  }
  const invariant = entries.flatMap((e) => (e.label ? [{ ...e, label: e.label }] : []));
  const counts = countLabels(invariant, first.parameters.length > 0 ? filters : []);
  return { match, reports: reports.length, entries, counts };
}
