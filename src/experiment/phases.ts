import type { Recipe } from './schema';

/** One `fit` of a run: the training, or one branch of the retraining comparison. */
export interface PhasePlan {
  /** `train`, `normal-s<seed>` or `selective-s<seed>`. */
  id: string;
  kind: 'train' | 'normal' | 'selective';
  epochs: number;
  /** Seed of the per-epoch data order. */
  seed: number;
  /** The phase whose final checkpoint this one starts from. */
  from?: string;
  /** Whether the synaptic-filtering analysis runs in this phase. */
  analyse: boolean;
}

/**
 * The phases of a recipe, in order: `train`, then for each retraining seed a `normal-s<seed>`
 * and a `selective-s<seed>` branch, both starting from the final checkpoint of `train` and
 * seeing the same batches in the same order.
 */
export function planPhases(recipe: Recipe): PhasePlan[] {
  const phases: PhasePlan[] = [
    {
      id: 'train',
      kind: 'train',
      epochs: recipe.training.epochs,
      seed: recipe.training.seed,
      analyse: recipe.analysis.enabled,
    },
  ];
  if (recipe.retraining.enabled) {
    for (const seed of recipe.retraining.seeds) {
      for (const kind of ['normal', 'selective'] as const) {
        phases.push({
          id: `${kind}-s${seed}`,
          kind,
          epochs: recipe.retraining.epochs,
          seed,
          from: 'train',
          analyse: kind === 'selective',
        });
      }
    }
  }
  return phases;
}
