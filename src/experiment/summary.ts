import type { AccuracyPair, Comparison } from './comparison';

/** Mean and sample standard deviation (n − 1; 0 for one value) of some numbers. */
export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

/** Mean and sample standard deviation of `values` (NaN mean for none). */
export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  const mean = n ? values.reduce((s, v) => s + v, 0) / n : NaN;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), n };
}

/** One recipe run of a sweep: which system, which seed, and its `comparison.json`. */
export interface SweepEntry {
  /** The system (the recipe's name). */
  system: string;
  seed: number;
  comparison: Comparison;
  /** Wall-clock seconds of the run. */
  seconds?: number;
}

/** Clean, FGSM and PGD accuracy of one arm over the seeds of one system. */
export interface ArmSummary {
  clean: MeanStd;
  fgsm: MeanStd;
  pgd?: MeanStd;
}

/** One system of a sweep, each arm summarised over its seeds. */
export interface SystemSummary {
  system: string;
  seeds: number[];
  /** At the shared checkpoint, before retraining. */
  start: ArmSummary;
  normal: ArmSummary;
  selective: ArmSummary;
  /** Selective − normal per seed, summarised (positive: selective retraining did better). */
  gain: ArmSummary;
  /** Layers frozen at the selective branch's end, mean over seeds. */
  frozenAtEnd?: number;
  /** Wall-clock seconds of the system's runs together. */
  seconds: number;
}

function arm(pairs: AccuracyPair[]): ArmSummary {
  const pgd = pairs.map((p) => p.pgd).filter((v): v is number => v !== undefined);
  return {
    clean: meanStd(pairs.map((p) => p.clean)),
    fgsm: meanStd(pairs.map((p) => p.fgsm)),
    ...(pgd.length === pairs.length && pgd.length > 0 ? { pgd: meanStd(pgd) } : {}),
  };
}

function difference(a: AccuracyPair, b: AccuracyPair): AccuracyPair {
  return {
    clean: a.clean - b.clean,
    fgsm: a.fgsm - b.fgsm,
    ...(a.pgd !== undefined && b.pgd !== undefined ? { pgd: a.pgd - b.pgd } : {}),
  };
}

/**
 * Summarises a sweep (one recipe run per system and seed, each with one retraining seed or
 * more): per system, mean ± std over every (run, retraining seed) of the start, normal and
 * selective accuracies and of their per-seed difference. Systems keep their first-seen order.
 */
export function summarizeSweep(entries: readonly SweepEntry[]): SystemSummary[] {
  const systems = [...new Set(entries.map((e) => e.system))];
  return systems.map((system) => {
    const own = entries.filter((e) => e.system === system);
    const seeds = own.flatMap((e) => e.comparison.seeds);
    const frozen = seeds.map((s) => s.frozenAtEnd).filter((v): v is number => v !== undefined);
    return {
      system,
      seeds: own.map((e) => e.seed),
      start: arm(seeds.map((s) => s.start)),
      normal: arm(seeds.map((s) => s.normal)),
      selective: arm(seeds.map((s) => s.selective)),
      gain: arm(seeds.map((s) => difference(s.selective, s.normal))),
      ...(frozen.length ? { frozenAtEnd: frozen.reduce((a, b) => a + b, 0) / frozen.length } : {}),
      seconds: own.reduce((s, e) => s + (e.seconds ?? 0), 0),
    };
  });
}

const pct = (m: MeanStd | undefined, signed = false) => {
  if (!m || !Number.isFinite(m.mean)) return '–';
  const mean = (m.mean * 100).toFixed(1);
  return `${signed && m.mean >= 0 ? '+' : ''}${mean} ± ${(m.std * 100).toFixed(1)}`;
};

/**
 * A markdown table of a sweep: per system, the normal and selective arms (clean, FGSM, PGD in %,
 * mean ± std over seeds; layers frozen at the selective arm's end, mean over seeds), then
 * selective − normal.
 */
export function sweepMarkdownTable(summaries: readonly SystemSummary[]): string {
  const lines = [
    '| system | arm | seeds | clean % | FGSM % | PGD % | layers frozen at the end |',
    '| :-- | :-- | --: | --: | --: | --: | --: |',
  ];
  for (const s of summaries) {
    const n = s.normal.clean.n;
    const frozen = s.frozenAtEnd === undefined ? '–' : String(Number(s.frozenAtEnd.toFixed(1)));
    for (const [name, a, signed, f] of [
      ['normal', s.normal, false, '0'],
      ['selective', s.selective, false, frozen],
      ['selective − normal', s.gain, true, ''],
    ] as const) {
      lines.push(
        `| ${s.system} | ${name} | ${n} | ${pct(a.clean, signed)} | ${pct(a.fgsm, signed)} | ${pct(a.pgd, signed)} | ${f} |`,
      );
    }
  }
  return lines.join('\n');
}
