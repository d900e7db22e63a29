/**
 * A small seeded pseudo-random generator (mulberry32) for reproducible shuffles and splits.
 * Not for cryptography.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A permutation of 0…n−1, the same for the same seed (Fisher–Yates). */
export function seededPermutation(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

const MIX = [0x9e3779b1, 0x85ebca6b, 0xc2b2ae35];

/** One 32-bit seed from up to three seed parts (a seed, a pass, a batch, …), order-sensitive. */
export function mixSeeds(...parts: number[]): number {
  if (parts.length > MIX.length) throw new Error(`mixSeeds takes at most ${MIX.length} parts`);
  return parts.reduce((mixed, part, i) => mixed ^ Math.imul(part + 1, MIX[i]), 0) >>> 0;
}

/** `count` distinct indices of 0…n−1, ascending, the same for the same seed. */
export function seededSample(n: number, count: number, seed: number): number[] {
  return seededPermutation(n, seed)
    .slice(0, count)
    .sort((a, b) => a - b);
}
