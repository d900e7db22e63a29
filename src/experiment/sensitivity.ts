/**
 * The sensitivity study of selective retraining (docs/reproduction.md): for each setting of the
 * selective arm (score × rule × tolerance), does freezing by the analysis' labels beat freezing
 * as many layers at random? Pure: the grid, and the table from the runs' comparisons.
 */
import type { ScoreId } from '../analysis/types';
import {
  formatGain,
  points,
  type AccuracyPair,
  type ArmResult,
  type Comparison,
} from './comparison';
import { pairedGain, studentTQuantile, type PairedGain } from './statistics';

/** One setting of the selective arm. */
export interface SensitivityCell {
  score: ScoreId;
  rule: 'any' | 'all';
  tolerance: number;
}

/** The grid's axes. */
export interface SensitivityGrid {
  scores: ScoreId[];
  rules: Array<'any' | 'all'>;
  tolerances: number[];
}

/** Every cell of the grid, scores outermost, tolerances innermost. */
export function sensitivityCells(grid: SensitivityGrid): SensitivityCell[] {
  return grid.scores.flatMap((score) =>
    grid.rules.flatMap((rule) => grid.tolerances.map((tolerance) => ({ score, rule, tolerance }))),
  );
}

/** A short, file-name-safe name of a cell: `adversarial-any-t0.02`. */
export function cellName(cell: SensitivityCell): string {
  return `${cell.score}-${cell.rule}-t${cell.tolerance}`;
}

/** The recipe overrides (`field=value`) that make a run's selective arm use `cell`. */
export function cellOverrides(cell: SensitivityCell): string[] {
  return [
    `retraining.score=${cell.score}`,
    `retraining.filters=${cell.rule}`,
    `retraining.tolerance=${cell.tolerance}`,
  ];
}

/** One cell's results over the seeds. */
export interface CellSummary extends SensitivityCell {
  seeds: number[];
  /** Layers frozen at the selective arm's end, mean over seeds. */
  frozenAtEnd: number;
  /**
   * Refreshes of the selective arm (over all seeds) that froze nothing because every analysed
   * weight was fragile (freezing all would leave nothing to train), and all its refreshes.
   */
  allFragile: { skipped: number; refreshes: number };
  /** Selective − normal, random-freeze − normal, selective − random-freeze (paired over seeds). */
  gains: Record<'selective' | 'randomFreeze' | 'selectiveVsRandom', Record<Metric, PairedGain>>;
  /**
   * Selective − random-freeze on FGSM with a Bonferroni-corrected interval (95% over all the grid's
   * cells together): what may be claimed after looking at every cell.
   */
  fgsmVsRandomCorrected: [number, number];
}

type Metric = 'clean' | 'fgsm' | 'pgd';
const METRICS: Metric[] = ['clean', 'fgsm', 'pgd'];

function armValues(comparisons: readonly Comparison[], arm: string, metric: Metric): number[] {
  return comparisons.map((c) => {
    const value = (c.seeds[0][arm] as AccuracyPair | undefined)?.[metric];
    if (value === undefined) {
      throw new Error(`sensitivity: a run of seed ${c.seeds[0].seed} has no ${arm} ${metric}`);
    }
    return value;
  });
}

/** The interval of `gain` at the Bonferroni level for `cells` simultaneous intervals. */
function corrected(gain: PairedGain, cells: number): [number, number] {
  if (gain.n < 2) return [NaN, NaN];
  const half = (studentTQuantile(1 - 0.025 / cells, gain.n - 1) * gain.std) / Math.sqrt(gain.n);
  return [gain.mean - half, gain.mean + half];
}

/**
 * Summarises one cell from its runs' comparisons (one run per seed, each with normal, selective
 * and random-freeze arms); `cells` is the grid's size, for the corrected interval.
 */
export function summarizeCell(
  cell: SensitivityCell,
  comparisons: readonly Comparison[],
  cells: number,
  allFragile: CellSummary['allFragile'] = { skipped: 0, refreshes: 0 },
): CellSummary {
  const gains = { selective: {}, randomFreeze: {}, selectiveVsRandom: {} } as CellSummary['gains'];
  for (const metric of METRICS) {
    const normal = armValues(comparisons, 'normal', metric);
    const selective = armValues(comparisons, 'selective', metric);
    const random = armValues(comparisons, 'random-freeze', metric);
    gains.selective[metric] = pairedGain(selective, normal);
    gains.randomFreeze[metric] = pairedGain(random, normal);
    gains.selectiveVsRandom[metric] = pairedGain(selective, random);
  }
  const frozen = comparisons.map((c) => (c.seeds[0].selective as ArmResult).frozenAtEnd ?? 0);
  return {
    ...cell,
    seeds: comparisons.map((c) => c.seeds[0].seed),
    frozenAtEnd: frozen.reduce((a, b) => a + b, 0) / Math.max(1, frozen.length),
    allFragile,
    gains,
    fgsmVsRandomCorrected: corrected(gains.selectiveVsRandom.fgsm, cells),
  };
}

const cell = (gain: PairedGain) =>
  formatGain(gain)
    .replace(' points', '')
    .replace(/, n = \d+/, '');

/** The sensitivity table in Markdown, one row per cell. */
export function sensitivityTable(summaries: readonly CellSummary[]): string {
  const lines = [
    '| score | rule | τ | layers frozen (selective, end) | selective − normal FGSM | random-freeze − normal FGSM | selective − random-freeze FGSM | selective − random-freeze PGD | selective − random-freeze clean |',
    '| :-- | :-- | --: | --: | --: | --: | --: | --: | --: |',
  ];
  for (const s of summaries) {
    const g = s.gains;
    const { skipped, refreshes } = s.allFragile;
    const frozen =
      s.frozenAtEnd.toFixed(1) +
      (skipped ? ` (all fragile: ${skipped} of ${refreshes} refreshes froze nothing)` : '');
    lines.push(
      `| ${s.score} | ${s.rule} | ${s.tolerance} | ${frozen} | ${cell(g.selective.fgsm)} | ` +
        `${cell(g.randomFreeze.fgsm)} | ${cell(g.selectiveVsRandom.fgsm)} | ${cell(g.selectiveVsRandom.pgd)} | ` +
        `${cell(g.selectiveVsRandom.clean)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * What the grid allows us to say: in how many cells selective beats or trails random-freeze on
 * FGSM at 95% per cell, and how many survive the Bonferroni correction for looking at them all.
 */
export function sensitivitySentences(summaries: readonly CellSummary[]): string[] {
  const m = summaries.length;
  if (m === 0) return ['No cell finished.'];
  const n = Math.min(...summaries.map((s) => s.seeds.length));
  const name = (s: CellSummary) => `${s.score}/${s.rule}/τ ${s.tolerance}`;
  const above = summaries.filter((s) => s.gains.selectiveVsRandom.fgsm.ci95[0] > 0);
  const below = summaries.filter((s) => s.gains.selectiveVsRandom.fgsm.ci95[1] < 0);
  const survive = summaries.filter((s) => s.fgsmVsRandomCorrected[0] > 0);
  const list = (cells: CellSummary[]) => (cells.length ? ` (${cells.map(name).join('; ')})` : '');
  return [
    `Selective − random-freeze on FGSM, ${m} settings at n = ${n} seeds each: the 95% interval is ` +
      `above 0 in ${above.length}${list(above)} and below 0 in ${below.length}${list(below)}; ` +
      `by chance alone about ${(0.025 * m).toFixed(1)} of ${m} would be above 0.`,
    survive.length
      ? `With the Bonferroni correction for ${m} settings, the analysis beats random freezing in ` +
        survive
          .map(
            (s) =>
              `${name(s)} (${points(s.gains.selectiveVsRandom.fgsm.mean)} points, corrected interval ` +
              `[${points(s.fgsmVsRandomCorrected[0])}, ${points(s.fgsmVsRandomCorrected[1])}])`,
          )
          .join('; ') +
        '.'
      : `With the Bonferroni correction for ${m} settings, no setting makes the analysis beat ` +
        `random freezing of as many layers: no detectable difference at n = ${n}.`,
  ];
}
