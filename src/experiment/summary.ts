import {
  armGainLine,
  armGains,
  formatGain,
  type AccuracyPair,
  type ArmGains,
  type ArmResult,
  type Comparison,
} from './comparison';

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
  /** Every arm (normal first) over the seeds that ran it; with `frozenAtEnd` for arms that freeze. */
  arms: Record<string, ArmSummary & { frozenAtEnd?: number }>;
  /** Every arm but normal: arm − normal paired over seeds, with t-based 95% intervals. */
  gains: Record<string, ArmGains>;
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
    const withSelective = seeds.filter((s) => s.selective !== undefined);
    const frozen = seeds.map((s) => s.frozenAtEnd).filter((v): v is number => v !== undefined);
    const names = [...new Set(own.flatMap((e) => e.comparison.arms ?? ['normal', 'selective']))];
    return {
      system,
      seeds: own.map((e) => e.seed),
      start: arm(seeds.map((s) => s.start)),
      normal: arm(seeds.map((s) => s.normal)),
      selective: arm(withSelective.map((s) => s.selective)),
      gain: arm(withSelective.map((s) => difference(s.selective, s.normal))),
      ...(frozen.length ? { frozenAtEnd: frozen.reduce((a, b) => a + b, 0) / frozen.length } : {}),
      seconds: own.reduce((s, e) => s + (e.seconds ?? 0), 0),
      arms: Object.fromEntries(names.map((name) => [name, armOverSeeds(seeds, name)])),
      gains: Object.fromEntries(
        names.filter((name) => name !== 'normal').map((name) => [name, armGains(seeds, name)]),
      ),
    };
  });
}

function armOverSeeds(
  seeds: Comparison['seeds'],
  name: string,
): ArmSummary & { frozenAtEnd?: number } {
  const own = seeds.filter((s) => s[name] !== undefined);
  const results = own.map((s) => s[name] as ArmResult);
  // Comparisons recorded before arms kept the selective arm's count on the seed only.
  const frozen = own
    .map(
      (s) =>
        (s[name] as ArmResult).frozenAtEnd ?? (name === 'selective' ? s.frozenAtEnd : undefined),
    )
    .filter((v): v is number => v !== undefined);
  return {
    ...arm(results),
    ...(frozen.length ? { frozenAtEnd: frozen.reduce((a, b) => a + b, 0) / frozen.length } : {}),
  };
}

const pct = (m: MeanStd | undefined, signed = false) => {
  if (!m || !Number.isFinite(m.mean)) return '–';
  const mean = (m.mean * 100).toFixed(1);
  return `${signed && m.mean >= 0 ? '+' : ''}${mean} ± ${(m.std * 100).toFixed(1)}`;
};

const gainCell = (gain: ArmGains[keyof ArmGains] | undefined) =>
  gain ? formatGain(gain).replace(' points', '') : '–';

/**
 * A markdown table of a sweep: per system, every arm (clean, FGSM, PGD in %, mean ± std over
 * seeds; layers frozen at the arm's end, mean over seeds), then each arm − normal as the mean
 * paired gain in points with its 95% interval.
 */
export function sweepMarkdownTable(summaries: readonly SystemSummary[]): string {
  const lines = [
    '| system | arm | seeds | clean % | FGSM % | PGD % | layers frozen at the end |',
    '| :-- | :-- | --: | --: | --: | --: | --: |',
  ];
  for (const s of summaries) {
    for (const [name, a] of Object.entries(s.arms)) {
      const frozen = a.frozenAtEnd === undefined ? '0' : String(Number(a.frozenAtEnd.toFixed(1)));
      lines.push(
        `| ${s.system} | ${name} | ${a.clean.n} | ${pct(a.clean)} | ${pct(a.fgsm)} | ${pct(a.pgd)} | ${frozen} |`,
      );
    }
    for (const [name, g] of Object.entries(s.gains)) {
      lines.push(
        `| ${s.system} | ${name} − normal (points, 95% CI) | ${g.fgsm.n} | ${gainCell(g.clean)} | ${gainCell(g.fgsm)} | ${gainCell(g.pgd)} | |`,
      );
    }
  }
  return lines.join('\n');
}

/** One sentence per system and arm: its gains over normal and what the intervals allow. */
export function sweepGainSentences(summaries: readonly SystemSummary[]): string[] {
  return summaries.flatMap((s) =>
    Object.entries(s.gains).map(([name, g]) => `${s.system}: ${armGainLine(name, g)}.`),
  );
}
