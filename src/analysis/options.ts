import Ajv, { type ErrorObject } from 'ajv';
import type { ModelOutputKind } from './attacks';
import { FILTER_ALIASES } from './filters';
import type { ParameterSelection } from './parameters';
import type {
  AnalysisMode,
  AttackId,
  BaselineId,
  FilterId,
  ResolvedAnalysisOptions,
} from './types';
import { FILTER_IDS } from './types';

/** Progress of an analysis, for front ends. */
export interface AnalysisProgress {
  /** (parameter, filter, step) cells finished. */
  done: number;
  /** All cells of the analysis. */
  total: number;
  /** The parameter being analysed. */
  parameter: string;
}

/** Options of {@link analyze}. Only `epsilon` is required. */
export interface AnalyzeOptions {
  /** FGSM/PGD radius ε, in the units of the model's input (> 0). Required. */
  epsilon: number;
  /** Thresholds per filter sweep, K (≥ 3); default 25. */
  steps?: number;
  /** Filters to sweep; default all three. The paper's names h_a, h_b, h_c are accepted. */
  filters?: Array<FilterId | 'h_a' | 'h_b' | 'h_c'>;
  /** Tolerance τ of the labels; default 0.02. */
  tolerance?: number;
  /** Baseline of the scores; default `'remaining'` (method.md §4). */
  baseline?: BaselineId;
  /**
   * Recompute the adversarial set against each filtered model (white-box, default true), or
   * compute it once against the unfiltered model (false: cheaper, a transfer setting).
   */
  regenerate?: boolean;
  /** The adversary; default `'fgsm'`. `'pgd'` is stronger (beyond the paper). */
  attack?: AttackId;
  /** PGD settings; default `{ steps: 10, stepSize: ε/4 }`. */
  pgd?: { steps: number; stepSize: number };
  /**
   * Which weights to analyse: names or RegExps tested against weight names. Default: the
   * kernels of convolution and dense layers (method.md §1).
   */
  parameters?: ParameterSelection;
  /** Examples per forward/backward pass; default 256. */
  batchSize?: number;
  /** Clip adversarial inputs to `[low, high]`; default none (as the authors). */
  clip?: [number, number];
  /** `'layerwise'` (default): each parameter on its own; `'global'`: all selected at once. */
  mode?: AnalysisMode;
  /** How to read the model's output (see `ModelOutputKind`); default `'auto'`. */
  output?: ModelOutputKind;
  /**
   * `'fast'` (default) caches activations, skips steps whose removed set repeats, and reads
   * clean accuracy off the attack's forward pass; `'naive'` evaluates every step from scratch.
   * Both give the same results; `'naive'` exists to prove it and to benchmark.
   */
  strategy?: 'fast' | 'naive';
  /** Called after each evaluated step. */
  onProgress?: (progress: AnalysisProgress) => void;
}

/** The JSON schema of the JSON-representable analysis options (used by recipes too). */
export const ANALYZE_OPTIONS_SCHEMA = {
  $id: 'tfjs-antifragile/analyze-options',
  type: 'object',
  additionalProperties: false,
  required: ['epsilon'],
  properties: {
    epsilon: {
      type: 'number',
      exclusiveMinimum: 0,
      description: 'Attack radius ε in input units.',
    },
    steps: {
      type: 'integer',
      minimum: 3,
      maximum: 10000,
      default: 25,
      description: 'Thresholds K.',
    },
    filters: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { enum: [...FILTER_IDS, 'h_a', 'h_b', 'h_c'] },
      default: [...FILTER_IDS],
    },
    tolerance: { type: 'number', minimum: 0, default: 0.02 },
    baseline: { enum: ['remaining', 'constant', 'removed'], default: 'remaining' },
    regenerate: { type: 'boolean', default: true },
    attack: { enum: ['fgsm', 'pgd'], default: 'fgsm' },
    pgd: {
      type: 'object',
      additionalProperties: false,
      required: ['steps', 'stepSize'],
      properties: {
        steps: { type: 'integer', minimum: 1 },
        stepSize: { type: 'number', exclusiveMinimum: 0 },
      },
    },
    parameters: {
      description: 'Weight names, or (from code) RegExps; default: convolution and dense kernels.',
    },
    batchSize: { type: 'integer', minimum: 1, default: 256 },
    clip: {
      type: 'array',
      items: { type: 'number' },
      minItems: 2,
      maxItems: 2,
    },
    mode: { enum: ['layerwise', 'global'], default: 'layerwise' },
    output: { enum: ['auto', 'logits', 'probabilities'], default: 'auto' },
    strategy: { enum: ['fast', 'naive'], default: 'fast' },
    onProgress: {},
  },
} as const;

const ajv = new Ajv({ allErrors: true });
const validate = ajv.compile(ANALYZE_OPTIONS_SCHEMA);

function valueAt(data: unknown, pointer: string): unknown {
  let value: unknown = data;
  for (const part of pointer.split('/').slice(1)) {
    value = (value as Record<string, unknown> | undefined)?.[part];
  }
  return value;
}

function show(value: unknown): string {
  if (value instanceof RegExp) return String(value);
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text;
}

/** A readable sentence for each ajv error: the option, the value received, what is allowed. */
export function describeSchemaErrors(
  errors: ErrorObject[],
  data: unknown,
  where: string,
  label = 'option',
): string[] {
  return errors.map((e) => {
    const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const name = path ? `${path}.${extra}` : extra;
      return `${where}: unknown ${label} '${name}'`;
    }
    if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return `${where}: ${label} '${path ? `${path}.` : ''}${missing}' is required`;
    }
    const allowed =
      e.keyword === 'enum'
        ? `: one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map(show).join(', ')}`
        : '';
    return `${where}: ${label} '${path}' ${e.message}${allowed}; got ${show(valueAt(data, e.instancePath))}`;
  });
}

/** Everything {@link analyze} needs, validated and with defaults filled in. */
export interface ResolvedOptions extends ResolvedAnalysisOptions {
  output: ModelOutputKind;
  strategy: 'fast' | 'naive';
  selection?: ParameterSelection;
  onProgress?: (progress: AnalysisProgress) => void;
}

/** Validates analysis options and fills in defaults; throws one error listing every problem. */
export function resolveAnalyzeOptions(options: AnalyzeOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new Error(
      `analyze: options must be an object with at least { epsilon }; got ${show(options)}`,
    );
  }
  const problems: string[] = [];
  if (!validate(options))
    problems.push(...describeSchemaErrors(validate.errors ?? [], options, 'analyze'));
  const sel = options.parameters;
  if (sel !== undefined) {
    const items = Array.isArray(sel) ? sel : [sel];
    if (items.length === 0 || items.some((s) => typeof s !== 'string' && !(s instanceof RegExp))) {
      problems.push(
        `analyze: option 'parameters' must be a weight name, a RegExp, or a non-empty array of them; got ${show(sel)}`,
      );
    }
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    problems.push(
      `analyze: option 'onProgress' must be a function; got ${show(options.onProgress)}`,
    );
  }
  if (options.clip && !(options.clip[0] < options.clip[1])) {
    problems.push(
      `analyze: option 'clip' must be [low, high] with low < high; got ${show(options.clip)}`,
    );
  }
  if (options.pgd && options.attack !== 'pgd') {
    problems.push(
      `analyze: option 'pgd' is only used with attack: 'pgd'; got attack ${show(options.attack ?? 'fgsm')}`,
    );
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));

  const attack = options.attack ?? 'fgsm';
  const filters = (options.filters ?? [...FILTER_IDS]).map(
    (f) => FILTER_ALIASES[f] ?? f,
  ) as FilterId[];
  if (new Set(filters).size !== filters.length) {
    throw new Error(
      `analyze: option 'filters' names the same filter twice (aliases included); got ${show(options.filters)}`,
    );
  }
  return {
    epsilon: options.epsilon,
    steps: options.steps ?? 25,
    filters,
    tolerance: options.tolerance ?? 0.02,
    baseline: options.baseline ?? 'remaining',
    regenerate: options.regenerate ?? true,
    attack,
    ...(attack === 'pgd'
      ? { pgd: options.pgd ?? { steps: 10, stepSize: options.epsilon / 4 } }
      : {}),
    parameters: [],
    batchSize: options.batchSize ?? 256,
    ...(options.clip ? { clip: [options.clip[0], options.clip[1]] as [number, number] } : {}),
    mode: options.mode ?? 'layerwise',
    output: options.output ?? 'auto',
    strategy: options.strategy ?? 'fast',
    selection: options.parameters,
    onProgress: options.onProgress,
  };
}
