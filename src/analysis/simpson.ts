/**
 * Composite Simpson integration of samples y(x), x strictly increasing, possibly unevenly
 * spaced. With an odd number of intervals, Simpson's rule covers all but the last interval
 * and the last one gets the three-point correction that `scipy.integrate.simpson` uses since
 * SciPy 1.11 (exact for quadratics). Two points fall back to the trapezoid rule.
 */
export function simpson(y: number[], x: number[]): number {
  const n = y.length;
  if (x.length !== n) throw new Error(`simpson: y has ${n} samples but x has ${x.length}`);
  if (n < 2) throw new Error(`simpson: need at least 2 samples; got ${n}`);
  for (let i = 1; i < n; i++) {
    if (!(x[i] > x[i - 1]))
      throw new Error(`simpson: x must increase strictly (x[${i}] = ${x[i]})`);
  }
  if (n === 2) return ((x[1] - x[0]) * (y[0] + y[1])) / 2;
  const evenIntervals = (n - 1) % 2 === 0;
  const last = evenIntervals ? n - 1 : n - 2; // index where the Simpson panels end
  let total = 0;
  for (let i = 0; i + 2 <= last; i += 2) {
    const h0 = x[i + 1] - x[i];
    const h1 = x[i + 2] - x[i + 1];
    const hsum = h0 + h1;
    total +=
      (hsum / 6) *
      (y[i] * (2 - h1 / h0) + y[i + 1] * ((hsum * hsum) / (h0 * h1)) + y[i + 2] * (2 - h0 / h1));
  }
  if (!evenIntervals) {
    const h0 = x[n - 2] - x[n - 3];
    const h1 = x[n - 1] - x[n - 2];
    const alpha = (2 * h1 * h1 + 3 * h0 * h1) / (6 * (h0 + h1));
    const beta = (h1 * h1 + 3 * h0 * h1) / (6 * h0);
    const eta = (h1 * h1 * h1) / (6 * h0 * (h0 + h1));
    total += alpha * y[n - 1] + beta * y[n - 2] - eta * y[n - 3];
  }
  return total;
}
