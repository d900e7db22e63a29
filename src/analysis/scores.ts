import { simpson } from './simpson';
import type { BaselineId, Label, LabelTriple, ScoreTriple, StepResult } from './types';

/**
 * The label of a filtering score against the tolerance τ (docs/method.md §5):
 * s < −τ fragile, |s| ≤ τ robust, s > τ antifragile.
 */
export function characterise(score: number, tolerance: number): Label {
  if (!Number.isFinite(score)) throw new Error(`characterise: score must be finite; got ${score}`);
  if (!(tolerance >= 0)) throw new Error(`characterise: tolerance must be ≥ 0; got ${tolerance}`);
  if (score < -tolerance) return 'fragile';
  if (score > tolerance) return 'antifragile';
  return 'robust';
}

/** The baseline b_k of step k (docs/method.md §4). */
export function baselineValue(baseline: BaselineId, removed: number, size: number): number {
  switch (baseline) {
    case 'remaining':
      return 1 - removed / size;
    case 'removed':
      return removed / size;
    case 'constant':
      return 1;
    default:
      throw new Error(`unknown baseline '${String(baseline)}'; use remaining, constant or removed`);
  }
}

/**
 * Normalises a curve by its value at step 0. A curve whose step-0 value is 0 cannot be
 * normalised: it is returned raw, flagged.
 */
export function normaliseCurve(values: number[]): { curve: number[]; normalised: boolean } {
  const first = values[0];
  if (first === 0) return { curve: values.slice(), normalised: false };
  return { curve: values.map((v) => v / first), normalised: true };
}

/** Ψ = ∫₀¹ (curve − baseline) du with the composite Simpson rule over the steps' progress. */
export function filteringScore(curve: number[], baseline: number[], progress: number[]): number {
  return simpson(
    curve.map((c, k) => c - baseline[k]),
    progress,
  );
}

/** The three filtering scores of one sweep, their labels, and which curves were raw. */
export function scoreSweep(
  steps: StepResult[],
  size: number,
  baseline: BaselineId,
  tolerance: number,
): {
  scores: ScoreTriple;
  labels: LabelTriple;
  unnormalised: { clean: boolean; adversarial: boolean };
} {
  const progress = steps.map((s) => s.progress);
  const base = steps.map((s) => baselineValue(baseline, s.removed, size));
  const clean = normaliseCurve(steps.map((s) => s.clean));
  const adversarial = normaliseCurve(steps.map((s) => s.adversarial));
  const psiClean = filteringScore(clean.curve, base, progress);
  const psiAdv = filteringScore(adversarial.curve, base, progress);
  const scores = { clean: psiClean, adversarial: psiAdv, difference: psiAdv - psiClean };
  return {
    scores,
    labels: {
      clean: characterise(scores.clean, tolerance),
      adversarial: characterise(scores.adversarial, tolerance),
      difference: characterise(scores.difference, tolerance),
    },
    unnormalised: { clean: !clean.normalised, adversarial: !adversarial.normalised },
  };
}
