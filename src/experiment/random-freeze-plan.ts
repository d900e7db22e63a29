import * as path from 'path';
import type { RandomFreezeStep } from '../../callbacks/random-freeze-callback';
import type { SelectiveRetrainState } from '../../callbacks/selective-retrain-callback';
import { CHECKPOINT_FILES } from './checkpoint';
import type { PhasePlan } from './phases';
import type { CheckpointState, RunContext } from './run-context';

/**
 * What the random-freeze arm of a seed copies from the selective arm of that seed: the candidate
 * layers (those owning an analysed parameter in its start report) and how many layers it froze at
 * each refresh (from the history in its final checkpoint).
 */
export function randomFreezePlan(
  ctx: RunContext,
  plan: PhasePlan,
): { layers: string[]; schedule: RandomFreezeStep[] } {
  const selective = `selective-s${plan.seed}`;
  const { folder, recipe } = ctx;
  const start = folder.readAnalyses(selective).find((r) => r.epoch === 0);
  const dir = folder.checkpointDir(selective, recipe.retraining.epochs);
  const state = folder.readJson<CheckpointState>(path.join(dir, CHECKPOINT_FILES.state));
  const history: SelectiveRetrainState['history'] | undefined = state.selective?.history;
  if (!start || !history) {
    throw new Error(
      `${plan.id}: the ${selective} arm left no start report or frozen-set history to copy ` +
        `(${dir}); random-freeze runs after selective`,
    );
  }
  const layers = [...new Set(start.parameters.map((p) => p.layer))];
  const schedule = history.map((r) => ({ epoch: r.epoch, count: r.frozen.length }));
  return { layers, schedule };
}
