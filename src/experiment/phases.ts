import { RETRAINING_ARMS, type Recipe, type RetrainingArm } from './schema';

/** One `fit` of a run: the training, or one branch of the retraining comparison. */
export interface PhasePlan {
  /** `train`, or `<arm>-s<seed>` (`normal-s0`, `random-freeze-s1`, …). */
  id: string;
  kind: 'train' | RetrainingArm;
  epochs: number;
  /** Seed of the per-epoch data order. */
  seed: number;
  /** The phase whose final checkpoint this one starts from. */
  from?: string;
  /** Whether the synaptic-filtering analysis runs in this phase. */
  analyse: boolean;
}

/** Whether an arm freezes layers by the analysis' labels (and so analyses as it trains). */
export function freezesByLabels(kind: PhasePlan['kind']): boolean {
  return kind === 'selective' || kind === 'selective-adversarial';
}

/** Whether an arm trains on adversarialBatches. */
export function trainsAdversarially(kind: PhasePlan['kind']): boolean {
  return kind === 'adversarial' || kind === 'selective-adversarial';
}

/**
 * The phases of a recipe, in order: `train`, then for each retraining seed one branch per arm
 * (`normal-s<seed>`, `selective-s<seed>`, …), all starting from the final checkpoint of `train`
 * and seeing the same batches in the same order.
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
      // In RETRAINING_ARMS' order, so that selective runs before random-freeze, which copies its counts.
      for (const kind of RETRAINING_ARMS.filter((arm) => recipe.retraining.arms.includes(arm))) {
        phases.push({
          id: `${kind}-s${seed}`,
          kind,
          epochs: recipe.retraining.epochs,
          seed,
          from: 'train',
          analyse: freezesByLabels(kind),
        });
      }
    }
  }
  return phases;
}
