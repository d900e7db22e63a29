/**
 * Named instants in the writes of a run folder (`run.json`, checkpoints), where a test can see
 * what is on disk, or make the write fail, exactly there: crash safety tested by injection, not
 * by luck. Without a hook, {@link killPoint} does nothing.
 */
export type KillPointHook = (point: string) => void;

let hook: KillPointHook | undefined;

/**
 * Installs `next` (or none) as the hook every {@link killPoint} calls; returns the previous one.
 * A hook may copy the folder (the state a crash there would leave) or throw (a failed write).
 */
export function setKillPointHook(next: KillPointHook | undefined): KillPointHook | undefined {
  const previous = hook;
  hook = next;
  return previous;
}

/** Marks an instant, `<file or folder>: <what has just happened>`. */
export function killPoint(point: string): void {
  hook?.(point);
}
