import * as tf from '@tensorflow/tfjs';
import { applyFilter, filterStep } from '../src/analysis';

// Dyadic values, so thresholds fall exactly on elements (ties) and float32 is exact.
const VALUES = [0.5, -1, 1, -0.5, 0, -0.5, 1];
const K = 5; // α steps through m + u(M − m) = −1, −0.5, 0, 0.5, 1

function run(filter: 'highpass' | 'lowpass' | 'pulse', step: number) {
  const t = tf.tensor(VALUES, [7]);
  const { filtered, removed, alpha } = applyFilter(t, filter, step, K);
  const out = Array.from(filtered.dataSync());
  tf.dispose([t, filtered]);
  const removedIdx = VALUES.map((v, i) => (out[i] === 0 && v !== 0 ? i : -1)).filter((i) => i >= 0);
  return { out, removed, alpha, removedIdx };
}

/** Elements other than the removed ones must be untouched. */
function expectKept(out: number[], removedValues: (v: number) => boolean) {
  VALUES.forEach((v, i) => expect(out[i]).toBe(removedValues(v) ? 0 : v));
}

describe('synaptic filters (docs/method.md §2)', () => {
  it('highpass removes θ ≤ α: the minimum first, ties at the threshold included, all at the end', () => {
    const first = run('highpass', 0);
    expect(first.alpha).toBe(-1);
    expect(first.removed).toBe(1);
    expectKept(first.out, (v) => v <= -1);
    const tie = run('highpass', 1); // α = −0.5 equals two elements
    expect(tie.alpha).toBe(-0.5);
    expect(tie.removed).toBe(3);
    expectKept(tie.out, (v) => v <= -0.5);
    const middle = run('highpass', 2);
    expect(middle.alpha).toBe(0);
    expect(middle.removed).toBe(4); // −1, −0.5, −0.5, 0
    expectKept(middle.out, (v) => v <= 0);
    const last = run('highpass', 4);
    expect(last.removed).toBe(7);
    expect(last.out.every((v) => v === 0)).toBe(true);
  });

  it('lowpass removes θ ≥ α: both maxima first (a tie), all at the end', () => {
    const first = run('lowpass', 0);
    expect(first.alpha).toBe(1);
    expect(first.removed).toBe(2);
    expectKept(first.out, (v) => v >= 1);
    const middle = run('lowpass', 2);
    expect(middle.alpha).toBe(0);
    expect(middle.removed).toBe(4); // 0, 0.5, 1, 1
    expectKept(middle.out, (v) => v >= 0);
    const last = run('lowpass', 4);
    expect(last.alpha).toBe(-1);
    expect(last.removed).toBe(7);
  });

  it('pulse removes the band [α − w/2, α + w/2), w = (M − m)/K, sliding across the range', () => {
    // w = 0.4: bands [−1.2, −0.8), [−0.7, −0.3), [−0.2, 0.2), [0.3, 0.7), [0.8, 1.2)
    const expected = [
      (v: number) => v === -1,
      (v: number) => v === -0.5,
      (v: number) => v === 0,
      (v: number) => v === 0.5,
      (v: number) => v === 1,
    ];
    const counts = [1, 2, 1, 1, 2];
    for (let k = 0; k < K; k++) {
      const r = run('pulse', k);
      expect(r.alpha).toBeCloseTo(-1 + k * 0.5, 12);
      expect(r.removed).toBe(counts[k]);
      expectKept(r.out, expected[k]);
    }
  });

  it('band edges: the lower edge is inside the pulse, the upper edge outside', () => {
    // m = 0, M = 1, K = 4 → w = 0.25; step 1: α = 1/3, band [1/3 − 1/8, 1/3 + 1/8)
    const rule = filterStep('pulse', 1, 4, 0, 1);
    const lo = 1 / 3 - 0.125;
    const hi = 1 / 3 + 0.125;
    expect(rule.removes(lo)).toBe(true);
    expect(rule.removes(hi)).toBe(false);
    expect(rule.removes((lo + hi) / 2)).toBe(true);
  });

  it('each step removes an interval of values, as the method defines it, at every edge', () => {
    const probes = [...VALUES, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, -Infinity, Infinity];
    const width = 2 / K; // (M − m)/K
    const spec = {
      highpass: (v: number, a: number) => v <= a,
      lowpass: (v: number, a: number) => v >= a,
      pulse: (v: number, a: number) => v >= a - width / 2 && v < a + width / 2,
    };
    for (const filter of ['highpass', 'lowpass', 'pulse'] as const) {
      for (let step = 0; step < K; step++) {
        const rule = filterStep(filter, step, K, -1, 1);
        const { lo, hi, hiOpen } = rule.interval;
        for (const v of [...probes, rule.alpha, lo, hi]) {
          const inside = v >= lo && (hiOpen ? v < hi : v <= hi);
          const expected = spec[filter](v, rule.alpha);
          expect([filter, step, v, inside, rule.removes(v)]).toEqual([
            filter,
            step,
            v,
            expected,
            expected,
          ]);
        }
      }
    }
  });

  it("accepts the paper's names h_a, h_b, h_c", () => {
    const t = tf.tensor(VALUES);
    for (const [alias, id] of [
      ['h_a', 'highpass'],
      ['h_b', 'lowpass'],
      ['h_c', 'pulse'],
    ] as const) {
      const a = applyFilter(t, alias as never, 2, K);
      const b = applyFilter(t, id, 2, K);
      expect(Array.from(a.filtered.dataSync())).toEqual(Array.from(b.filtered.dataSync()));
      tf.dispose([a.filtered, b.filtered]);
    }
    t.dispose();
  });

  it('rejects bad steps, non-finite values and unknown filters with clear messages', () => {
    const t = tf.tensor([1, 2, 3]);
    expect(() => applyFilter(t, 'highpass', 0, 2)).toThrow(/steps must be an integer ≥ 3; got 2/);
    expect(() => applyFilter(t, 'highpass', 5, 5)).toThrow(
      /step must be an integer in \[0, 4\]; got 5/,
    );
    expect(() => applyFilter(t, 'bandstop' as never, 0, 5)).toThrow(/unknown filter 'bandstop'/);
    const bad = tf.tensor([1, NaN, 3]);
    expect(() => applyFilter(bad, 'highpass', 0, 5)).toThrow(
      /non-finite value \(NaN\) at flat index 1/,
    );
    tf.dispose([t, bad]);
  });
});
