import type { MetricRow } from './run-folder';

/** Clean and FGSM accuracy on the test set (and PGD at a phase's end). */
export interface AccuracyPair {
  clean: number;
  fgsm: number;
  /** PGD accuracy (10 steps of ε/4), measured at the end of each phase. */
  pgd?: number;
}

/** One seed of the normal-vs-selective comparison. */
export interface ComparisonSeed {
  seed: number;
  /** Accuracy at the shared checkpoint (end of `train`). */
  start: AccuracyPair;
  /** After the normal branch's last epoch. */
  normal: AccuracyPair;
  /** After the selective branch's last epoch. */
  selective: AccuracyPair;
  /** Layers frozen at the selective branch's end. */
  frozenAtEnd?: number;
}

/** What `comparison.json` holds. */
export interface Comparison {
  seeds: ComparisonSeed[];
  /** Means over the seeds. */
  mean: { start: AccuracyPair; normal: AccuracyPair; selective: AccuracyPair };
  /** Mean selective − normal (positive: selective retraining did better). */
  gain: AccuracyPair;
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

/**
 * The normal-vs-selective table from a run's metric rows: for each seed whose two branches have
 * finished (`completed`), the accuracies at the shared checkpoint and at each branch's end.
 * Undefined when no seed is complete.
 */
export function compareBranches(
  rows: readonly MetricRow[],
  completed: readonly string[],
): Comparison | undefined {
  const start = pair(lastRow(rows, 'train'));
  if (!start) return undefined;
  const seeds: ComparisonSeed[] = [];
  for (const phase of completed) {
    const match = /^normal-s(\d+)$/.exec(phase);
    if (!match || !completed.includes(`selective-s${match[1]}`)) continue;
    const normal = pair(lastRow(rows, phase));
    const selectiveRow = lastRow(rows, `selective-s${match[1]}`);
    const selective = pair(selectiveRow);
    if (!normal || !selective) continue;
    const frozen = Number(selectiveRow?.frozen_layers);
    seeds.push({
      seed: Number(match[1]),
      start,
      normal,
      selective,
      ...(Number.isFinite(frozen) ? { frozenAtEnd: frozen } : {}),
    });
  }
  if (seeds.length === 0) return undefined;
  const normal = mean(seeds.map((s) => s.normal));
  const selective = mean(seeds.map((s) => s.selective));
  return {
    seeds,
    mean: { start, normal, selective },
    gain: {
      clean: selective.clean - normal.clean,
      fgsm: selective.fgsm - normal.fgsm,
      ...(selective.pgd !== undefined && normal.pgd !== undefined
        ? { pgd: selective.pgd - normal.pgd }
        : {}),
    },
  };
}
