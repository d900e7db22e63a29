/**
 * How an {@link AnalysisReport} is tracked in MLflow: one metric per parameter × filter × score,
 * label counts, reference accuracies, and the report as JSON and CSV. Plain data in, plain
 * data out: no tfjs, no network.
 */
import {
  FILTER_IDS,
  LABELS,
  SCORE_IDS,
  type AnalysisReport,
  type FilterId,
  type ScoreId,
} from '../src/analysis/types';
import { labelCounts } from '../src/analysis/labels';
import { sanitizeKey } from '../src/mlflow/keys';

const SCORE_KEY: Record<ScoreId, string> = {
  clean: 'psi_clean',
  adversarial: 'psi_adversarial',
  difference: 'psi_difference',
};

/**
 * The short name of a parameter in metric keys: its tfjs name without a trailing `/kernel`
 * (so `conv2d_1/kernel` reads `conv2d_1`; a separable layer's `…/depthwise_kernel` stays).
 */
export function parameterKeyName(name: string): string {
  return name.replace(/\/kernel$/, '');
}

/**
 * The metric key of one score: `psi_<score>/<filter>/<parameter>`,
 * e.g. `psi_adversarial/highpass/conv2d_1`.
 */
export function scoreMetricKey(score: ScoreId, filter: FilterId, parameter: string): string {
  return sanitizeKey(`${SCORE_KEY[score]}/${filter}/${parameterKeyName(parameter)}`);
}

/**
 * The metrics of one report, keyed for MLflow:
 * - `psi_<score>/<filter>/<parameter>`: every score;
 * - `labels_<score>/<filter>/<label>`: how many parameters got each label;
 * - `analysis/reference_clean`, `analysis/reference_adversarial`: accuracies of the
 *   unfiltered model; `analysis/seconds`: time the analysis took.
 */
export function analysisMetrics(report: AnalysisReport): Record<string, number> {
  const out: Record<string, number> = {
    'analysis/reference_clean': report.reference.clean,
    'analysis/reference_adversarial': report.reference.adversarial,
    'analysis/seconds': report.seconds,
  };
  const counts = labelCounts(report);
  for (const filter of FILTER_IDS) {
    const byScore = counts[filter];
    if (!byScore) continue;
    for (const score of SCORE_IDS) {
      for (const label of LABELS) {
        out[sanitizeKey(`labels_${score}/${filter}/${label}`)] = byScore[score][label];
      }
      for (const p of report.parameters) {
        const result = p.filters[filter];
        if (result) out[scoreMetricKey(score, filter, p.name)] = result.scores[score];
      }
    }
  }
  return out;
}

/** Params that record how the analysis was run (`analysis.<option>`), as strings. */
export function analysisParams(report: AnalysisReport): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(report.options)) {
    if (value === undefined) continue;
    out[`analysis.${key}`] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  out['analysis.examples'] = String(report.examples);
  return out;
}

function csvField(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The CSV columns of {@link analysisCsv}. */
export const ANALYSIS_CSV_COLUMNS = [
  'epoch',
  'parameter',
  'layer',
  'size',
  'depth',
  'filter',
  'psi_clean',
  'psi_adversarial',
  'psi_difference',
  'label_clean',
  'label_adversarial',
  'label_difference',
  'unnormalised_clean',
  'unnormalised_adversarial',
] as const;

/** The report as CSV: a header, then one row per parameter × filter. */
export function analysisCsv(report: AnalysisReport): string {
  const rows: string[] = [ANALYSIS_CSV_COLUMNS.join(',')];
  for (const p of report.parameters) {
    for (const filter of FILTER_IDS) {
      const r = p.filters[filter];
      if (!r) continue;
      rows.push(
        [
          report.epoch ?? '',
          p.name,
          p.layer,
          p.size,
          p.depth,
          filter,
          r.scores.clean,
          r.scores.adversarial,
          r.scores.difference,
          r.labels.clean,
          r.labels.adversarial,
          r.labels.difference,
          r.unnormalised.clean,
          r.unnormalised.adversarial,
        ]
          .map(csvField)
          .join(','),
      );
    }
  }
  return rows.join('\n') + '\n';
}
