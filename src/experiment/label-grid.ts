/**
 * The label grid of a phase: each parameter's label (and score) per analysed epoch, per filter
 * and score. Pure (no Node module): the run folder writes it, the browser demo draws it.
 */
import type { AnalysisReport, FilterId, Label, ScoreId } from '../analysis/types';
import { FILTER_IDS, SCORE_IDS } from '../analysis/types';

/** The label grid of one phase: parameter × epoch labels per filter and score. */
export interface LabelGrid {
  phase: string;
  epochs: number[];
  parameters: string[];
  /** `labels[filter][score][parameterIndex][epochIndex]`. */
  labels: Partial<Record<FilterId, Record<ScoreId, Label[][]>>>;
  /** `scores[filter][score][parameterIndex][epochIndex]`. */
  scores: Partial<Record<FilterId, Record<ScoreId, number[][]>>>;
}

/** Builds the label grid of one phase from its reports (in epoch order). */
export function labelGrid(phase: string, reports: readonly AnalysisReport[]): LabelGrid {
  const sorted = [...reports].sort((a, b) => (a.epoch ?? 0) - (b.epoch ?? 0));
  const parameters = sorted[0]?.parameters.map((p) => p.name) ?? [];
  const grid: LabelGrid = {
    phase,
    epochs: sorted.map((r) => r.epoch ?? 0),
    parameters,
    labels: {},
    scores: {},
  };
  for (const filter of FILTER_IDS) {
    if (!sorted[0]?.parameters.some((p) => p.filters[filter])) continue;
    const labels = {} as Record<ScoreId, Label[][]>;
    const scores = {} as Record<ScoreId, number[][]>;
    for (const score of SCORE_IDS) {
      labels[score] = parameters.map((name) =>
        sorted.map((r) => {
          const result = r.parameters.find((p) => p.name === name)?.filters[filter];
          return result ? result.labels[score] : ('robust' as Label);
        }),
      );
      scores[score] = parameters.map((name) =>
        sorted.map(
          (r) => r.parameters.find((p) => p.name === name)?.filters[filter]?.scores[score] ?? NaN,
        ),
      );
    }
    grid.labels[filter] = labels;
    grid.scores[filter] = scores;
  }
  return grid;
}
