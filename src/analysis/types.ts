/**
 * The analysis report and its parts: plain, JSON-serialisable data (docs/method.md §3–§5).
 */
import type { ResolvedAnalysisOptions } from './options';

/** Synaptic filter ids (docs/method.md §2). `h_a`, `h_b`, `h_c` are the paper's names. */
export type FilterId = 'highpass' | 'lowpass' | 'pulse';
/** The three filtering scores of a (parameter, filter). */
export type ScoreId = 'clean' | 'adversarial' | 'difference';
/** The label a score gets against the tolerance τ (docs/method.md §5). */
export type Label = 'fragile' | 'robust' | 'antifragile';
/** Baseline b(u) that a normalised curve is compared against (docs/method.md §4). */
export type BaselineId = ResolvedAnalysisOptions['baseline'];
/** The adversary of an analysis. */
export type AttackId = ResolvedAnalysisOptions['attack'];
/** Each parameter on its own, or all selected at once. */
export type AnalysisMode = ResolvedAnalysisOptions['mode'];

export const FILTER_IDS: readonly FilterId[] = ['highpass', 'lowpass', 'pulse'];
export const SCORE_IDS: readonly ScoreId[] = ['clean', 'adversarial', 'difference'];
export const LABELS: readonly Label[] = ['fragile', 'robust', 'antifragile'];

/** One step k of a filter sweep. Accuracies are fractions in [0, 1]. */
export interface StepResult {
  /** Filtering progress u_k = k/(K−1). */
  progress: number;
  /** Threshold α_k. */
  alpha: number;
  /** Elements set to zero, r_k. */
  removed: number;
  /** Top-1 accuracy on the clean set. */
  clean: number;
  /** Top-1 accuracy on the adversarial set. */
  adversarial: number;
}

export interface ScoreTriple {
  clean: number;
  adversarial: number;
  difference: number;
}

export interface LabelTriple {
  clean: Label;
  adversarial: Label;
  difference: Label;
}

/** The sweep of one filter over one parameter, its scores and labels. */
export interface FilterResult {
  steps: StepResult[];
  scores: ScoreTriple;
  labels: LabelTriple;
  /**
   * Curves that could not be normalised because the accuracy at step 0 was 0
   * (docs/method.md §4): their score is computed on the raw curve and flagged here.
   */
  unnormalised: { clean: boolean; adversarial: boolean };
}

/** One analysed weight tensor. */
export interface ParameterResult {
  /** The weight variable's tfjs name, e.g. `conv1/kernel`. */
  name: string;
  /** The name of the layer that owns it. */
  layer: string;
  shape: number[];
  /** Number of elements N. */
  size: number;
  /** Relative depth: index / count among the analysed parameters, in [0, 1). */
  depth: number;
  filters: Partial<Record<FilterId, FilterResult>>;
  /**
   * Distinct filtered models actually evaluated for this parameter: steps whose removed set
   * repeats an earlier one (or is empty) reuse that result.
   */
  evaluated: number;
}

/** Resolved options recorded in a report (derived from the options schema). */
export type { ResolvedAnalysisOptions } from './options';

/** The result of {@link analyze}. */
export interface AnalysisReport {
  /** Accuracies of the unfiltered model. */
  reference: { clean: number; adversarial: number };
  parameters: ParameterResult[];
  options: ResolvedAnalysisOptions;
  /** `tf.getBackend()` during the analysis. */
  backend: string;
  /** Wall-clock seconds the analysis took. */
  seconds: number;
  /** Examples in the evaluation set. */
  examples: number;
  /** Epoch the report belongs to, when produced by a callback (0-based, as tfjs counts). */
  epoch?: number;
}
