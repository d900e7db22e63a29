import { phaseArm } from './phase-id';
import type { MetricRow } from './run-folder';
import { gainVerdict, pairedGain, type PairedGain } from './statistics';

/** Clean and FGSM accuracy on the test set (and PGD at a phase's end). */
export interface AccuracyPair {
  clean: number;
  fgsm: number;
  /** PGD accuracy (default settings, `PGD_DEFAULTS`), measured at the end of each phase. */
  pgd?: number;
}

/** One arm's result for one seed: its accuracies at its last epoch. */
export interface ArmResult extends AccuracyPair {
  /** Layers frozen at the arm's end (arms that freeze). */
  frozenAtEnd?: number;
}

/**
 * One seed of the comparison. `normal` and `selective` are kept as before; every arm that
 * finished for this seed is also under its own name (`seeds[i]['random-freeze']`, …).
 */
export interface ComparisonSeed {
  seed: number;
  /** Accuracy at the shared checkpoint (end of `train`). */
  start: AccuracyPair;
  /** After the normal branch's last epoch. */
  normal: AccuracyPair;
  /** After the selective branch's last epoch (absent when the run has no selective arm). */
  selective: AccuracyPair;
  /** Layers frozen at the selective branch's end. */
  frozenAtEnd?: number;
  /** Every arm by name, `normal` and `selective` included. */
  [arm: string]: ArmResult | AccuracyPair | number | undefined;
}

/** The paired gain (arm − normal over seeds) of each accuracy. */
export interface ArmGains {
  clean: PairedGain;
  fgsm: PairedGain;
  pgd?: PairedGain;
}

/** What `comparison.json` holds. */
export interface Comparison {
  seeds: ComparisonSeed[];
  /** Means over the seeds (`start`, `normal`, `selective`, and every other arm by name). */
  mean: { start: AccuracyPair; normal: AccuracyPair; selective: AccuracyPair } & Record<
    string,
    AccuracyPair
  >;
  /** Mean selective − normal (positive: selective retraining did better). */
  gain: AccuracyPair;
  /** The arms compared, normal first (absent in runs recorded before arms existed). */
  arms?: string[];
  /**
   * For each arm but normal: arm − normal per seed, with mean, std and a t-based 95% interval
   * (absent in runs recorded before arms existed).
   */
  gains?: Record<string, ArmGains>;
}

function pair(row: MetricRow | undefined): AccuracyPair | undefined {
  if (!row) return undefined;
  const clean = Number(row.test_acc);
  const fgsm = Number(row.test_fgsm_acc);
  const pgd = Number(row.test_pgd_acc);
  if (!Number.isFinite(clean) || !Number.isFinite(fgsm)) return undefined;
  return Number.isFinite(pgd) ? { clean, fgsm, pgd } : { clean, fgsm };
}

function lastRow(rows: readonly MetricRow[], phase: string): MetricRow | undefined {
  const own = rows.filter((r) => r.phase === phase);
  return own[own.length - 1];
}

function armResult(rows: readonly MetricRow[], phase: string): ArmResult | undefined {
  const row = lastRow(rows, phase);
  const accuracy = pair(row);
  if (!accuracy) return undefined;
  const frozen = Number(row?.frozen_layers);
  return Number.isFinite(frozen) ? { ...accuracy, frozenAtEnd: frozen } : accuracy;
}

function mean(values: AccuracyPair[]): AccuracyPair {
  const n = Math.max(values.length, 1);
  return {
    clean: values.reduce((s, v) => s + v.clean, 0) / n,
    fgsm: values.reduce((s, v) => s + v.fgsm, 0) / n,
    ...(values.length > 0 && values.every((v) => v.pgd !== undefined)
      ? { pgd: values.reduce((s, v) => s + (v.pgd as number), 0) / n }
      : {}),
  };
}

/** Arms and seeds of the completed retraining phases (`<arm>-s<seed>`), arms in first-seen order. */
function completedArms(completed: readonly string[]): Map<string, Set<number>> {
  const arms = new Map<string, Set<number>>();
  for (const phase of completed) {
    const parsed = phaseArm(phase);
    if (!parsed) continue;
    if (!arms.has(parsed.arm)) arms.set(parsed.arm, new Set());
    arms.get(parsed.arm)?.add(parsed.seed);
  }
  return arms;
}

/** An arm's paired gains over normal, over the seeds that ran it (a run's, or a sweep's). */
export function armGains(seeds: readonly ComparisonSeed[], arm: string): ArmGains {
  const paired = seeds.filter((s) => s[arm] !== undefined);
  const values = (key: keyof AccuracyPair, name: string) =>
    paired.map((s) => (s[name] as AccuracyPair)[key] as number);
  const gain = (key: keyof AccuracyPair) => pairedGain(values(key, arm), values(key, 'normal'));
  const withPgd = paired.every(
    (s) => (s[arm] as AccuracyPair).pgd !== undefined && s.normal.pgd !== undefined,
  );
  return {
    clean: gain('clean'),
    fgsm: gain('fgsm'),
    ...(withPgd && paired.length > 0 ? { pgd: gain('pgd') } : {}),
  };
}

/**
 * The comparison of retraining arms from a run's metric rows: for each seed whose normal arm and
 * at least one other arm have finished (`completed`), the accuracies at the shared checkpoint and
 * at each arm's end, and per arm the paired gain over normal with its 95% interval. Undefined
 * when no seed is complete.
 */
export function compareBranches(
  rows: readonly MetricRow[],
  completed: readonly string[],
): Comparison | undefined {
  const start = pair(lastRow(rows, 'train'));
  if (!start) return undefined;
  const done = completedArms(completed);
  const normalSeeds = done.get('normal') ?? new Set<number>();
  const others = [...done.keys()].filter((arm) => arm !== 'normal');
  const seeds: ComparisonSeed[] = [];
  for (const seed of [...normalSeeds].sort((a, b) => a - b)) {
    const normal = armResult(rows, `normal-s${seed}`);
    if (!normal) continue;
    const entry = { seed, start, normal } as ComparisonSeed;
    for (const arm of others) {
      const result = done.get(arm)?.has(seed) ? armResult(rows, `${arm}-s${seed}`) : undefined;
      if (result) entry[arm] = result;
    }
    if (Object.keys(entry).length <= 3) continue;
    const selectiveFrozen = (entry.selective as ArmResult | undefined)?.frozenAtEnd;
    if (selectiveFrozen !== undefined) entry.frozenAtEnd = selectiveFrozen;
    seeds.push(entry);
  }
  if (seeds.length === 0) return undefined;
  const arms = ['normal', ...others.filter((arm) => seeds.some((s) => s[arm] !== undefined))];
  const means: Record<string, AccuracyPair> = { start };
  for (const arm of arms) {
    means[arm] = mean(seeds.filter((s) => s[arm] !== undefined).map((s) => s[arm] as AccuracyPair));
  }
  const gains: Record<string, ArmGains> = {};
  for (const arm of arms.slice(1)) gains[arm] = armGains(seeds, arm);
  const selective = means.selective;
  const normal = means.normal;
  return {
    seeds,
    mean: means as Comparison['mean'],
    gain: selective
      ? {
          clean: selective.clean - normal.clean,
          fgsm: selective.fgsm - normal.fgsm,
          ...(selective.pgd !== undefined && normal.pgd !== undefined
            ? { pgd: selective.pgd - normal.pgd }
            : {}),
        }
      : { clean: NaN, fgsm: NaN },
    arms,
    gains,
  };
}

/** A fraction as signed accuracy points with one decimal: `+1.2`, `-0.3`. */
export const points = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;

/** A gain in accuracy points with its interval: `+1.2 points [−0.3, +2.7]`. */
export function formatGain(gain: PairedGain): string {
  const [low, high] = gain.ci95;
  const interval = Number.isNaN(low) ? 'no interval' : `95% CI [${points(low)}, ${points(high)}]`;
  return `${points(gain.mean)} points (${interval}, n = ${gain.n})`;
}

/**
 * One arm's gains over normal in words: FGSM, clean and PGD with their intervals, and what the
 * FGSM interval allows us to say ("raises" only when it excludes 0).
 */
export function armGainLine(arm: string, gains: ArmGains): string {
  const parts = [`FGSM ${formatGain(gains.fgsm)}`, `clean ${formatGain(gains.clean)}`];
  if (gains.pgd) parts.push(`PGD ${formatGain(gains.pgd)}`);
  const verdict = gainVerdict(gains.fgsm, arm).replace(' it ', ' FGSM accuracy ');
  return `${arm} − normal: ${parts.join('; ')}: ${verdict}`;
}

/** {@link armGainLine} for every arm of a comparison. */
export function gainLines(comparison: Comparison): string[] {
  return Object.entries(comparison.gains ?? {}).map(([arm, gains]) => armGainLine(arm, gains));
}

/**
 * MLflow metrics of arms' gains: `<prefix>/<arm>/gain_<metric>` (the mean) with `_ci95_lo` and
 * `_ci95_hi`, for a run's comparison and a sweep's summary alike.
 */
export function gainMetrics(
  gains: Record<string, ArmGains>,
  prefix: string,
): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const [arm, byMetric] of Object.entries(gains)) {
    for (const [metric, gain] of Object.entries(byMetric)) {
      const key = `${prefix}/${arm}/gain_${metric}`;
      metrics[key] = gain.mean;
      metrics[`${key}_ci95_lo`] = gain.ci95[0];
      metrics[`${key}_ci95_hi`] = gain.ci95[1];
    }
  }
  return metrics;
}
