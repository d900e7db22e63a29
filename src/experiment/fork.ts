import * as fs from 'fs';
import { EPOCH_CONVENTION } from './epochs';
import { planPhases, type PhasePlan } from './phases';
import { RUN_FILES, RunFolder, type FrozenRecord, type RunManifest } from './run-folder';
import type { Recipe } from './schema';

/** The recipe sections a fork must share with its source: everything that made the kept phases. */
const SHARED_SECTIONS = ['model', 'dataset', 'training', 'analysis'] as const;

function checkForkable(source: RunFolder, info: RunManifest, recipe: Recipe, keep: string[]) {
  const original = source.readRecipe();
  for (const section of SHARED_SECTIONS) {
    if (JSON.stringify(original[section]) !== JSON.stringify(recipe[section])) {
      throw new Error(
        `forkRun: the recipe's '${section}' differs from ${source.dir}'s; a fork may change ` +
          `'retraining' only (the kept phases were made with the source's ${section})`,
      );
    }
  }
  const before = new Map(planPhases(original).map((p) => [p.id, p]));
  const after = new Map(planPhases(recipe).map((p) => [p.id, p]));
  for (const id of keep) {
    if (!info.completedPhases.includes(id)) {
      throw new Error(
        `forkRun: phase '${id}' has not completed in ${source.dir} (completed: ${info.completedPhases.join(', ') || 'none'})`,
      );
    }
    if (JSON.stringify(before.get(id)) !== JSON.stringify(after.get(id))) {
      throw new Error(
        `forkRun: phase '${id}' would not be the same phase under the new recipe ` +
          '(another arm set, seed or epoch count); keep only phases both recipes define alike',
      );
    }
  }
}

/** The kept phases' manifest: they are complete, the newest checkpoint is the last one's end. */
function forkManifest(folder: RunFolder, source: RunManifest, plans: PhasePlan[]): RunManifest {
  const now = new Date().toISOString();
  const last = plans[plans.length - 1];
  return {
    id: folder.id,
    recipe: folder.readRecipe().name,
    status: 'killed',
    epochs: source.epochs ?? EPOCH_CONVENTION,
    created: now,
    updated: now,
    backend: source.backend,
    completedPhases: plans.map((p) => p.id),
    checkpoint: {
      phase: last.id,
      epoch: last.epochs,
      dir: folder.checkpointDir(last.id, last.epochs),
    },
    forkedFrom: { run: source.id, phases: plans.map((p) => p.id) },
    mlflowRuns: [],
    invocations: [],
  };
}

/**
 * Forks a run folder after some of its completed phases: a new run folder under `outDir` with
 * `recipe` (which may differ from the source's in `retraining` only) and the kept phases'
 * metrics, analyses, frozen records and checkpoints, ready to be continued with
 * `runRecipe(recipe, { resume: fork.dir })`. The continued run trains only the phases not kept,
 * from the same checkpoint and with the same kept results: how a sensitivity study tries several
 * selective-retraining settings on one trained model without training it again.
 */
export function forkRun(
  sourceDir: string,
  outDir: string,
  recipe: Recipe,
  keep: readonly string[],
): RunFolder {
  const source = RunFolder.open(sourceDir);
  const info = source.readInfo();
  checkForkable(source, info, recipe, [...keep]);
  // In the run's phase order, whatever order `keep` lists them in.
  const plans = planPhases(recipe).filter((p) => keep.includes(p.id));
  const folder = RunFolder.create(outDir, recipe.name);
  folder.writeJson(RUN_FILES.recipe, recipe);
  for (const { id } of plans) {
    for (const sub of [RUN_FILES.analysis, RUN_FILES.checkpoints]) {
      const from = source.file(sub, id);
      if (fs.existsSync(from)) fs.cpSync(from, folder.file(sub, id), { recursive: true });
    }
  }
  const kept = (record: { phase: string }) => keep.includes(record.phase);
  folder.writeMetrics(source.readMetrics().filter(kept));
  if (source.exists(RUN_FILES.frozen)) {
    const frozen = source.readJson<FrozenRecord[]>(RUN_FILES.frozen);
    folder.writeJson(RUN_FILES.frozen, frozen.filter(kept));
  }
  folder.writeLabels(folder.analysedPhases());
  folder.writeInfo(forkManifest(folder, info, plans));
  return folder;
}
