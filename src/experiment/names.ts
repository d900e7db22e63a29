import type * as tf from '@tensorflow/tfjs';
import type { AnalysisReport } from '../analysis/types';

/**
 * tfjs makes variable names unique per process: the second model built with the same layer
 * names gets `conv1/kernel_1`, and analysis reports use these names. A run builds a model per
 * phase (and a resumed run starts a new process), so it stores reports under the weights'
 * stable `originalName`s (`conv1/kernel`) and translates them back for the model at hand.
 */
export interface WeightNames {
  /** Current variable name → stable name. */
  toStable(name: string): string;
  /** Stable name → this model's variable name. */
  toCurrent(name: string): string;
}

/** The name translation of one model. */
export function weightNames(model: tf.LayersModel): WeightNames {
  const stable = new Map<string, string>();
  const current = new Map<string, string>();
  for (const w of model.weights) {
    stable.set(w.name, w.originalName);
    current.set(w.originalName, w.name);
  }
  return {
    toStable: (name) => stable.get(name) ?? name,
    toCurrent: (name) => current.get(name) ?? name,
  };
}

/** A copy of `report` whose parameter names (results and `options.parameters`) went through `rename`. */
export function renameReport(
  report: AnalysisReport,
  rename: (name: string) => string,
): AnalysisReport {
  const copy = JSON.parse(JSON.stringify(report)) as AnalysisReport;
  for (const p of copy.parameters) p.name = rename(p.name);
  // The options record the analysed weights too.
  if (Array.isArray(copy.options?.parameters)) {
    copy.options.parameters = copy.options.parameters.map(rename);
  }
  return copy;
}
