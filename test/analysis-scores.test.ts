import { characterise, scoreSweep, simpson } from '../src/analysis';
import type { StepResult } from '../src/analysis';

const grid = (n: number) => Array.from({ length: n }, (_, i) => i / (n - 1));

describe('simpson (composite, scipy ≥ 1.11 semantics)', () => {
  it('is exact for cubics with an even number of intervals', () => {
    const x = grid(25); // 24 intervals, as with K = 25
    expect(
      simpson(
        x.map((u) => u ** 3),
        x,
      ),
    ).toBeCloseTo(1 / 4, 14);
    expect(
      simpson(
        x.map((u) => 3 * u * u - 2 * u + 1),
        x,
      ),
    ).toBeCloseTo(1, 14);
  });

  it('is exact for quadratics with an odd number of intervals (last-interval correction)', () => {
    const x = grid(4); // 3 intervals
    expect(
      simpson(
        x.map((u) => u * u),
        x,
      ),
    ).toBeCloseTo(1 / 3, 14);
    const x2 = grid(24);
    expect(
      simpson(
        x2.map((u) => 5 * u * u + u),
        x2,
      ),
    ).toBeCloseTo(5 / 3 + 1 / 2, 13);
  });

  it('handles uneven spacing, exactly for quadratics', () => {
    const x = [0, 0.1, 0.35, 0.5, 0.9, 1];
    expect(
      simpson(
        x.map((u) => u * u),
        x,
      ),
    ).toBeCloseTo(1 / 3, 13);
    const x3 = [0, 0.2, 0.3, 0.7, 1];
    expect(
      simpson(
        x3.map((u) => 2 * u * u - u),
        x3,
      ),
    ).toBeCloseTo(2 / 3 - 1 / 2, 13);
  });

  it('matches the trapezoid rule for two points and a hand-computed odd case', () => {
    expect(simpson([1, 3], [0, 2])).toBe(4);
    // y = e^u on 4 points: Simpson on [0, 2/3] plus the correction on [2/3, 1]
    const x = grid(4);
    const y = x.map(Math.exp);
    const h = 1 / 3;
    const panel = (h / 3) * (y[0] + 4 * y[1] + y[2]);
    const alpha = (2 * h * h + 3 * h * h) / (6 * 2 * h);
    const beta = (h * h + 3 * h * h) / (6 * h);
    const eta = (h * h * h) / (6 * h * 2 * h);
    expect(simpson(y, x)).toBeCloseTo(panel + alpha * y[3] + beta * y[2] - eta * y[1], 14);
    expect(simpson(y, x)).toBeCloseTo(Math.E - 1, 2);
    // scipy.integrate.simpson(np.exp(x), x=x) with x = np.linspace(0, 1, 4), SciPy 1.17.1:
    expect(simpson(y, x)).toBeCloseTo(1.7194001114234077, 14);
  });

  it('rejects mismatched or non-increasing samples', () => {
    expect(() => simpson([1, 2], [0, 1, 2])).toThrow(/2 samples but x has 3/);
    expect(() => simpson([1, 2, 3], [0, 1, 1])).toThrow(/increase strictly/);
  });
});

describe('filtering scores and labels (docs/method.md §4–§5)', () => {
  // K = 3, N = 10; clean accuracy 0.8 → 0.4 → 0; adversarial 0.5 → 0.5 → 0.25
  const steps: StepResult[] = [
    { progress: 0, alpha: -1, removed: 1, clean: 0.8, adversarial: 0.5 },
    { progress: 0.5, alpha: 0, removed: 5, clean: 0.4, adversarial: 0.5 },
    { progress: 1, alpha: 1, removed: 10, clean: 0, adversarial: 0.25 },
  ];
  const simpson3 = (d: number[]) => (0.5 / 3) * (d[0] + 4 * d[1] + d[2]);
  // normalised: c = [1, 0.5, 0], a = [1, 1, 0.5]

  it("baseline 'remaining' (default): b = 1 − r/N", () => {
    const b = [0.9, 0.5, 0];
    const r = scoreSweep(steps, 10, 'remaining', 0.02);
    const clean = simpson3([1 - b[0], 0.5 - b[1], 0 - b[2]]);
    const adv = simpson3([1 - b[0], 1 - b[1], 0.5 - b[2]]);
    expect(r.scores.clean).toBeCloseTo(clean, 14);
    expect(r.scores.adversarial).toBeCloseTo(adv, 14);
    expect(r.scores.difference).toBeCloseTo(adv - clean, 14);
    expect(r.labels).toEqual({
      clean: 'robust',
      adversarial: 'antifragile',
      difference: 'antifragile',
    });
  });

  it("baseline 'constant': b = 1", () => {
    const r = scoreSweep(steps, 10, 'constant', 0.02);
    expect(r.scores.clean).toBeCloseTo(simpson3([0, -0.5, -1]), 14);
    expect(r.scores.adversarial).toBeCloseTo(simpson3([0, 0, -0.5]), 14);
    expect(r.labels.clean).toBe('fragile');
  });

  it("baseline 'removed': b = r/N", () => {
    const r = scoreSweep(steps, 10, 'removed', 0.02);
    expect(r.scores.clean).toBeCloseTo(simpson3([0.9, 0, -1]), 14);
    expect(r.scores.adversarial).toBeCloseTo(simpson3([0.9, 0.5, -0.5]), 14);
  });

  it('labels at exactly ±τ are robust; beyond them fragile or antifragile', () => {
    expect(characterise(0.02, 0.02)).toBe('robust');
    expect(characterise(-0.02, 0.02)).toBe('robust');
    expect(characterise(0.0200001, 0.02)).toBe('antifragile');
    expect(characterise(-0.0200001, 0.02)).toBe('fragile');
    expect(characterise(0, 0)).toBe('robust');
    expect(() => characterise(NaN, 0.02)).toThrow(/finite/);
  });

  it('a curve with accuracy 0 at step 0 is scored raw and flagged, not NaN', () => {
    const zero = steps.map((s) => ({ ...s, adversarial: s.progress === 0 ? 0 : 0.1 }));
    const r = scoreSweep(zero, 10, 'remaining', 0.02);
    expect(r.unnormalised).toEqual({ clean: false, adversarial: true });
    expect(Number.isFinite(r.scores.adversarial)).toBe(true);
    expect(r.scores.adversarial).toBeCloseTo(simpson3([0 - 0.9, 0.1 - 0.5, 0.1 - 0]), 14);
  });
});
