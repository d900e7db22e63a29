import type { AnalysisReport, FilterId, Label, ScoreId } from './types';
import { FILTER_IDS, LABELS, SCORE_IDS } from './types';

/** How many of each label, per filter and score: `counts[filter][score][label]`. */
export type LabelCounts = Partial<Record<FilterId, Record<ScoreId, Record<Label, number>>>>;

/** One labelled (filter, score) cell to count. */
export interface LabelledCell {
  filter: FilterId;
  score: ScoreId;
  label: Label;
}

function zeros(): Record<ScoreId, Record<Label, number>> {
  const perScore = {} as Record<ScoreId, Record<Label, number>>;
  for (const score of SCORE_IDS) {
    perScore[score] = Object.fromEntries(LABELS.map((l) => [l, 0])) as Record<Label, number>;
  }
  return perScore;
}

/**
 * The one label count: how many `cells` carry each label, per filter and score. Every filter
 * in `filters` gets a row of zeros even when no cell names it.
 */
export function countLabels(
  cells: Iterable<LabelledCell>,
  filters: readonly FilterId[] = [],
): LabelCounts {
  const counts: LabelCounts = {};
  for (const filter of filters) counts[filter] = zeros();
  for (const { filter, score, label } of cells) (counts[filter] ??= zeros())[score][label]++;
  return counts;
}

/** Every (parameter, filter, score) label of a report. */
export function* reportLabels(report: AnalysisReport): Generator<LabelledCell> {
  for (const p of report.parameters) {
    for (const filter of FILTER_IDS) {
      const result = p.filters[filter];
      if (!result) continue;
      for (const score of SCORE_IDS) yield { filter, score, label: result.labels[score] };
    }
  }
}

/** Counts of each label per filter and score in one report (filters the report swept). */
export function labelCounts(report: AnalysisReport): LabelCounts {
  return countLabels(reportLabels(report));
}

/** Counts of each label per score, summed over the filters. */
export function labelTotals(counts: LabelCounts): Record<ScoreId, Record<Label, number>> {
  const totals = zeros();
  for (const perScore of Object.values(counts)) {
    for (const score of SCORE_IDS) {
      for (const label of LABELS) totals[score][label] += perScore[score][label];
    }
  }
  return totals;
}
