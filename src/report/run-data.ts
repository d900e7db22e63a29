import type { AnalysisReport } from '../analysis/types';
import type { Comparison } from '../experiment/comparison';
import {
  RUN_FILES,
  RunFolder,
  labelGrid,
  type FrozenRecord,
  type LabelGrid,
  type MetricRow,
  type RunManifest,
} from '../experiment/run-folder';
import { effectiveInfo } from '../experiment/run-lock';
import type { Recipe } from '../experiment/schema';

/** Everything a report shows of one run, read from its folder. */
export interface RunData {
  dir: string;
  id: string;
  recipe: Recipe;
  info: RunManifest;
  rows: MetricRow[];
  /** Analysis reports per phase, in epoch order. */
  analyses: Record<string, AnalysisReport[]>;
  grids: LabelGrid[];
  frozen: FrozenRecord[];
  comparison?: Comparison;
}

/** Reads a run folder for the reports. */
export function readRunData(dir: string): RunData {
  const folder = RunFolder.open(dir);
  const analyses: Record<string, AnalysisReport[]> = {};
  for (const phase of folder.analysedPhases()) analyses[phase] = folder.readAnalyses(phase);
  const grids = Object.entries(analyses)
    .map(([phase, reports]) => labelGrid(phase, reports))
    .filter((g) => g.epochs.length > 0);
  return {
    dir: folder.dir,
    id: folder.id,
    recipe: folder.readRecipe(),
    info: effectiveInfo(folder, folder.readInfo()),
    rows: folder.readMetrics(),
    analyses,
    grids,
    frozen: folder.exists(RUN_FILES.frozen)
      ? folder.readJson<FrozenRecord[]>(RUN_FILES.frozen)
      : [],
    comparison: folder.exists(RUN_FILES.comparison)
      ? folder.readJson<Comparison>(RUN_FILES.comparison)
      : undefined,
  };
}

/** The newest report of the training phase, if any (the one the response curves show). */
export function latestTrainReport(data: RunData): AnalysisReport | undefined {
  const reports = data.analyses.train ?? [];
  return reports[reports.length - 1];
}
