import {
  gainVerdict,
  pairedGain,
  studentTCdf,
  studentTQuantile,
} from '../src/experiment/statistics';

describe('paired gains with t-based 95% intervals', () => {
  it("gives Student's t quantiles of the printed tables", () => {
    // Two-sided 95% critical values, df = 1, 2, 4, 9, 29 (any statistics table).
    const table: [number, number][] = [
      [1, 12.7062],
      [2, 4.3027],
      [4, 2.7764],
      [9, 2.2622],
      [29, 2.0452],
    ];
    for (const [df, t] of table) expect(studentTQuantile(0.975, df)).toBeCloseTo(t, 3);
    expect(studentTCdf(0, 5)).toBeCloseTo(0.5, 12);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.7764, 3);
  });

  it('matches a hand-worked interval', () => {
    // differences 2, 3, 2: mean 7/3, std √(1/3), half-width t(0.975, 2)·std/√3 = 4.3027/3.
    const gain = pairedGain([3, 5, 4], [1, 2, 2]);
    expect(gain.n).toBe(3);
    expect(gain.mean).toBeCloseTo(7 / 3, 12);
    expect(gain.std).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(gain.ci95[0]).toBeCloseTo(7 / 3 - 4.3027 / 3, 3);
    expect(gain.ci95[1]).toBeCloseTo(7 / 3 + 4.3027 / 3, 3);
    expect(gainVerdict(gain, 'adversarial retraining')).toBe(
      'adversarial retraining raises it (95% interval above 0 at n = 3)',
    );
  });

  it('says "no detectable difference" when the interval holds 0, and needs two seeds', () => {
    const mixed = pairedGain([0.5, 0.4, 0.6], [0.45, 0.5, 0.55]);
    expect(mixed.ci95[0]).toBeLessThan(0);
    expect(mixed.ci95[1]).toBeGreaterThan(0);
    expect(gainVerdict(mixed)).toBe('no detectable difference at n = 3');
    expect(gainVerdict(pairedGain([0.2, 0.1], [0.5, 0.45]))).toMatch(/lowers it/);
    const single = pairedGain([0.7], [0.6]);
    expect(single.mean).toBeCloseTo(0.1, 12);
    expect(single.ci95.every(Number.isNaN)).toBe(true);
    expect(gainVerdict(single)).toMatch(/at least 2 seeds/);
    expect(() => pairedGain([1, 2], [1])).toThrow(/2 values for the arm but 1/);
  });
});
