/**
 * Phase ids (`train`, `<arm>-s<seed>`) read back into their arm and seed. Pure (no import): the
 * comparison, the report's charts and the browser demo share it.
 */

/** The arm and seed of a retraining phase id (`<arm>-s<seed>`); undefined for `train`. */
export function phaseArm(id: string): { arm: string; seed: number } | undefined {
  const match = /^(.+)-s(\d+)$/.exec(id);
  return match ? { arm: match[1], seed: Number(match[2]) } : undefined;
}
