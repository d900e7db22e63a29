/**
 * Recipes: JSON experiments validated against `recipes/schema.json`, and the runner that trains,
 * analyses and compares normal with selective retraining, writing a run folder.
 */
export {
  RECIPE_SCHEMA,
  RECIPE_SCHEMA_ID,
  OPTIMIZER_NAMES,
  RETRAINING_ARMS,
  recipeSchemaJson,
} from './schema';
export type { Recipe, RecipeAnalysis, OptimizerName, RetrainingArm } from './schema';
export { validateRecipe, loadRecipe, applyOverrides, RecipeError } from './validate';
export { runRecipe } from './runner';
export type { RunRecipeOptions, RunResult, RunReporter } from './runner';
export { RunFolder, RUN_FILES, labelGrid, rowsToCsv, readJsonFile } from './run-folder';
export type { MetricRow, FrozenRecord, RunManifest, RunOutcome, LabelGrid } from './run-folder';
export { compareBranches } from './comparison';
export type { Comparison, ComparisonSeed, AccuracyPair } from './comparison';
export { saveCheckpoint, loadCheckpoint, commitCheckpoint, CHECKPOINT_FILES } from './checkpoint';
export { lockRunFolder, lockHolder, effectiveInfo } from './run-lock';
export type { RunLock, RunLockOwner } from './run-lock';
export { setKillPointHook } from './kill-points';
export type { KillPointHook } from './kill-points';
export { loadRecipeData, disposeRecipeData, epochOrder } from './data';
export type { RecipeData } from './data';
export { evaluateAccuracy } from './evaluate';
export type { EvaluateOptions } from './evaluate';
export { planPhases } from './phases';
export type { PhasePlan } from './phases';
export { startMlflowTracker, recipeParams } from './tracking';
export type { RunTracker, MlflowTrackerOptions } from './tracking';
export { meanStd, summarizeSweep, sweepMarkdownTable, sweepGainSentences } from './summary';
export type { MeanStd, SweepEntry, ArmSummary, SystemSummary } from './summary';
export { pairedGain, gainVerdict, studentTQuantile, studentTCdf } from './statistics';
export type { PairedGain } from './statistics';
export { loadModelFile, ModelFileError } from './model-file';
export type { LoadModelFileOptions, LoadedModelFile } from './model-file';
