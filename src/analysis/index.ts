export { analyze, checkAnalysisSetup } from './analyze';
export type { AnalysisData } from './analyze';
export {
  applyFilter,
  filterStep,
  filterValues,
  valueRange,
  FILTER_ALIASES,
  FILTER_ALIAS_NAMES,
} from './filters';
export type { FilterStep, FilterAlias, RemovedInterval } from './filters';
export { simpson } from './simpson';
export { characterise, baselineValue, normaliseCurve, filteringScore, scoreSweep } from './scores';
export {
  fgsm,
  pgd,
  logitsFunction,
  toOneHot,
  toClassIds,
  PGD_DEFAULTS,
  PGD_DEFAULTS_TEXT,
  defaultPgdSettings,
} from './attacks';
export type { AttackOptions, PgdOptions, ModelOutputKind } from './attacks';
export { selectParameters, weightNames, DEFAULT_LAYER_CLASSES } from './parameters';
export type { ParameterSelection, SelectedParameter } from './parameters';
export {
  resolveAnalyzeOptions,
  analysisOptionProblems,
  ANALYZE_OPTIONS_SCHEMA,
  describeSchemaErrors,
} from './options';
export type {
  AnalyzeOptions,
  AnalysisOptionsJson,
  AnalysisProgress,
  OptionProblem,
  ResolvedOptions,
} from './options';
export { invariance } from './invariance';
export { countLabels, labelCounts, labelTotals, reportLabels } from './labels';
export type { LabelCounts, LabelledCell } from './labels';
export type {
  InvarianceOptions,
  InvarianceReport,
  InvarianceEntry,
  InvarianceMatch,
} from './invariance';
export { GraphRunner } from './graph';
export * from './types';
export { adversarialBatches, replacedRows } from './adversarial-batches';
export type { AdversarialBatchesOptions, Batch } from './adversarial-batches';
export { GLOBAL_PARAMETER, workFilters } from './work';
export type { WorkItem } from './work';
export {
  shardPlan,
  shardWork,
  shardOptions,
  mergeShards,
  parseShardId,
  checkShardId,
  ShardMergeError,
} from './shards';
export type { PlannedWork, ShardId, ShardPartial } from './shards';
