/**
 * Paired differences over seeds with a t-based 95% confidence interval: what lets a comparison of
 * retraining arms say "raises" only when the data allow it.
 */

/** A paired difference (arm − reference) over n seeds. */
export interface PairedGain {
  /** Mean difference. */
  mean: number;
  /** Sample standard deviation of the differences (n − 1 in the denominator); 0 when n = 1. */
  std: number;
  /** 95% interval mean ± t(0.975, n − 1) · std / √n; [NaN, NaN] when n < 2. */
  ci95: [number, number];
  /** Number of pairs. */
  n: number;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms). */
function logGamma(x: number): number {
  const c = [
    0.9999999999998099, 676.5203681218851, -1259.1392167224028, 771.3234287776531,
    -176.61503916999186, 12.507343278686905, -0.13857109526572012, 9.984369578019572e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = c[0];
  for (let i = 1; i < 9; i++) sum += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Continued fraction of the regularised incomplete beta function (modified Lentz). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    const even = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + even * d;
    c = 1 + even / c;
    d = 1 / (Math.abs(d) < tiny ? tiny : d);
    c = Math.abs(c) < tiny ? tiny : c;
    h *= d * c;
    const odd = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + odd * d;
    c = 1 + odd / c;
    d = 1 / (Math.abs(d) < tiny ? tiny : d);
    c = Math.abs(c) < tiny ? tiny : c;
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < 1e-15) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x),
  );
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(a, b, x)) / a;
  return 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t with `df` degrees of freedom (0 < p < 1), by bisection. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentTQuantile: p must be in (0, 1); got ${p}`);
  if (!(df > 0)) throw new Error(`studentTQuantile: df must be > 0; got ${df}`);
  let low = -1e6;
  let high = 1e6;
  for (let i = 0; i < 200 && high - low > 1e-12 * Math.max(1, Math.abs(high)); i++) {
    const mid = (low + high) / 2;
    if (studentTCdf(mid, df) < p) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

/** Mean, sample std and t-based 95% interval of the paired differences `arm[i] − reference[i]`. */
export function pairedGain(arm: readonly number[], reference: readonly number[]): PairedGain {
  if (arm.length !== reference.length) {
    throw new Error(
      `pairedGain: ${arm.length} values for the arm but ${reference.length} for the reference; pairs need one of each`,
    );
  }
  const diffs = arm.map((value, i) => value - reference[i]);
  const n = diffs.length;
  if (n === 0) return { mean: NaN, std: NaN, ci95: [NaN, NaN], n };
  const mean = diffs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: 0, ci95: [NaN, NaN], n };
  const std = Math.sqrt(diffs.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1));
  const half = (studentTQuantile(0.975, n - 1) * std) / Math.sqrt(n);
  return { mean, std, ci95: [mean - half, mean + half], n };
}

/**
 * What an interval allows us to say, in words: "raises" / "lowers" only when the 95% interval
 * excludes 0; otherwise "no detectable difference at n = …".
 */
export function gainVerdict(gain: PairedGain, what = 'it'): string {
  const [low, high] = gain.ci95;
  if (!(gain.n >= 2) || Number.isNaN(low)) {
    return `no interval at n = ${gain.n} (at least 2 seeds are needed)`;
  }
  if (low > 0) return `${what} raises it (95% interval above 0 at n = ${gain.n})`;
  if (high < 0) return `${what} lowers it (95% interval below 0 at n = ${gain.n})`;
  return `no detectable difference at n = ${gain.n}`;
}
