import { compareBranches } from '../src/experiment/comparison';
import type { MetricRow } from '../src/experiment/run-folder';

const row = (
  phase: string,
  epoch: number,
  acc: number,
  fgsm: number,
  pgd?: number,
  frozen?: number,
): MetricRow => ({
  phase,
  epoch,
  test_acc: acc,
  test_fgsm_acc: fgsm,
  ...(pgd === undefined ? {} : { test_pgd_acc: pgd }),
  ...(frozen === undefined ? {} : { frozen_layers: frozen }),
});

describe('compareBranches with arms', () => {
  const rows: MetricRow[] = [
    row('train', 0, 0.8, 0.3),
    // seed 0
    row('normal-s0', 0, 0.85, 0.3, 0.1),
    row('selective-s0', 0, 0.84, 0.31, 0.12, 2),
    row('random-freeze-s0', 0, 0.83, 0.29, 0.1, 2),
    row('adversarial-s0', 0, 0.82, 0.5, 0.3),
    // seed 1
    row('normal-s1', 0, 0.86, 0.32, 0.11),
    row('selective-s1', 0, 0.86, 0.3, 0.1, 1),
    row('random-freeze-s1', 0, 0.85, 0.33, 0.1, 1),
    row('adversarial-s1', 0, 0.83, 0.55, 0.33),
    // seed 2: adversarial did not finish
    row('normal-s2', 0, 0.84, 0.28, 0.09),
    row('selective-s2', 0, 0.85, 0.29, 0.1, 3),
    row('random-freeze-s2', 0, 0.84, 0.3, 0.09, 3),
  ];
  const completed = [
    'train',
    ...[0, 1, 2].flatMap((s) => [`normal-s${s}`, `selective-s${s}`, `random-freeze-s${s}`]),
    'adversarial-s0',
    'adversarial-s1',
  ];

  it('pairs every arm with normal per seed and keeps the old fields', () => {
    const comparison = compareBranches(rows, completed);
    if (!comparison) throw new Error('no comparison');
    expect(comparison.arms).toEqual(['normal', 'selective', 'random-freeze', 'adversarial']);
    expect(comparison.seeds.map((s) => s.seed)).toEqual([0, 1, 2]);
    expect(comparison.seeds[0]['random-freeze']).toEqual({
      clean: 0.83,
      fgsm: 0.29,
      pgd: 0.1,
      frozenAtEnd: 2,
    });
    expect(comparison.seeds[0].selective).toMatchObject({ clean: 0.84, fgsm: 0.31 });
    expect(comparison.seeds[0].frozenAtEnd).toBe(2);
    expect(comparison.seeds[2].adversarial).toBeUndefined();
    // the old mean gain: selective − normal over the 3 seeds
    expect(comparison.gain.fgsm).toBeCloseTo((0.31 + 0.3 + 0.29 - 0.3 - 0.32 - 0.28) / 3, 12);
    const adversarial = comparison.gains?.adversarial;
    expect(adversarial?.fgsm.n).toBe(2);
    // differences 0.2 and 0.23: mean 0.215, std 0.0212, half-width 12.706 · 0.0212 / √2
    expect(adversarial?.fgsm.mean).toBeCloseTo(0.215, 12);
    expect(adversarial?.fgsm.std).toBeCloseTo(
      Math.sqrt(((0.2 - 0.215) ** 2 + (0.23 - 0.215) ** 2) / 1),
      12,
    );
    expect(adversarial?.fgsm.ci95[0]).toBeCloseTo(0.215 - (12.7062 * 0.0212132) / Math.SQRT2, 3);
    expect(comparison.gains?.selective.fgsm.n).toBe(3);
    expect(comparison.gains?.selective.pgd?.mean).toBeCloseTo((0.02 - 0.01 + 0.01) / 3, 12);
    expect(comparison.mean['random-freeze'].clean).toBeCloseTo((0.83 + 0.85 + 0.84) / 3, 12);
  });

  it('is undefined until a normal arm and another arm finished one seed', () => {
    expect(compareBranches(rows, ['train', 'normal-s0'])).toBeUndefined();
    expect(compareBranches(rows, ['train'])).toBeUndefined();
  });
});
