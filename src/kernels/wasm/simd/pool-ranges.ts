/**
 * What a pool of threads running our SIMD kernels offers, and how work is split over it
 * (browser-safe; the Node worker-thread pool itself is in `pool.ts`).
 */

/** Runs one export of the kernels module on several threads at once. */
export interface SimdPool {
  /** Threads, the calling one included. */
  readonly threads: number;
  /**
   * Calls `exports[name](...shares[i])` on thread i (thread 0 is the caller) and returns when
   * all have returned. Shares must not write to the same memory. Arguments: int32 only.
   */
  run(name: string, shares: number[][]): void;
}

/** Splits `[0, total)` into `parts` contiguous ranges as even as can be, as `[first, end)`. */
export function evenRanges(total: number, parts: number): [number, number][] {
  const ranges: [number, number][] = [];
  for (let p = 0; p < parts; p++) {
    const first = Math.floor((total * p) / parts);
    const end = Math.floor((total * (p + 1)) / parts);
    if (end > first) ranges.push([first, end]);
  }
  return ranges;
}
