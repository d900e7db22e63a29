export { analyze, checkAnalysisSetup } from './analyze';
export type { AnalysisData } from './analyze';
export { applyFilter, filterStep, filterValues, valueRange, FILTER_ALIASES } from './filters';
export type { FilterStep } from './filters';
export { simpson } from './simpson';
export { characterise, baselineValue, normaliseCurve, filteringScore, scoreSweep } from './scores';
export { fgsm, pgd, logitsFunction, toOneHot, toClassIds } from './attacks';
export type { AttackOptions, PgdOptions, ModelOutputKind } from './attacks';
export { selectParameters, weightNames, DEFAULT_LAYER_CLASSES } from './parameters';
export type { ParameterSelection, SelectedParameter } from './parameters';
export { resolveAnalyzeOptions, ANALYZE_OPTIONS_SCHEMA, describeSchemaErrors } from './options';
export type { AnalyzeOptions, AnalysisProgress } from './options';
export { invariance, labelCounts } from './invariance';
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
