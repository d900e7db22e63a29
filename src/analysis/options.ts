/**
 * The options of {@link analyze}, defined once: {@link ANALYZE_OPTIONS_SCHEMA} holds every
 * option's name, type, default and description. The TypeScript types below are derived from it,
 * and the recipe format's `analysis` section is this schema plus a few recipe-only fields.
 */
import Ajv, { type ErrorObject } from 'ajv';
import type { FromSchema, RequiredKeys, WithDefaults } from '../util/json-schema';
import { PGD_DEFAULTS_TEXT, defaultPgdSettings } from './attacks';
import { FILTER_ALIASES, FILTER_ALIAS_NAMES } from './filters';
import type { ParameterSelection } from './parameters';
import type { FilterId } from './types';
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

/**
 * The JSON schema of the analysis options: the one definition of their names, types, defaults
 * and descriptions (docs/method.md §1–§5). From code, `parameters` also takes RegExps and
 * `onProgress` a callback; neither has a JSON form.
 */
export const ANALYZE_OPTIONS_SCHEMA = {
  $id: 'tfjs-antifragile/analyze-options',
  type: 'object',
  additionalProperties: false,
  required: ['epsilon'],
  properties: {
    epsilon: {
      type: 'number',
      exclusiveMinimum: 0,
      description:
        'FGSM/PGD radius ε in the units of the model input (after any normalisation). ' +
        'Required: the authors tuned it per model and dataset, e.g. 0.015–0.035 for CIFAR-10 scaled to [−1, 1].',
    },
    steps: {
      type: 'integer',
      minimum: 3,
      maximum: 10000,
      default: 25,
      description: 'Thresholds K per filter sweep (≥ 3).',
    },
    filters: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { enum: [...FILTER_IDS, ...FILTER_ALIAS_NAMES] },
      default: [...FILTER_IDS],
      description: 'Synaptic filters to sweep (h_a, h_b, h_c are the paper’s names).',
    },
    tolerance: {
      type: 'number',
      minimum: 0,
      default: 0.02,
      description: 'Tolerance τ: a score below −τ is fragile, above τ antifragile, else robust.',
    },
    baseline: {
      enum: ['remaining', 'constant', 'removed'],
      default: 'remaining',
      description:
        'Baseline b(u) of the filtering scores: remaining = fraction of the tensor still present (docs/method.md §4).',
    },
    regenerate: {
      type: 'boolean',
      default: true,
      description:
        'Recompute the adversarial set against each filtered model (white-box) rather than once against the unfiltered model (a cheaper transfer setting).',
    },
    attack: {
      enum: ['fgsm', 'pgd'],
      default: 'fgsm',
      description: 'Adversary: FGSM (the paper) or PGD (stronger; beyond the paper).',
    },
    pgd: {
      type: 'object',
      additionalProperties: false,
      required: ['steps', 'stepSize'],
      description: `PGD steps and step size (attack: pgd only); default ${PGD_DEFAULTS_TEXT}.`,
      properties: {
        steps: { type: 'integer', minimum: 1, description: 'Gradient steps.' },
        stepSize: {
          type: 'number',
          exclusiveMinimum: 0,
          description: 'Size of each signed-gradient step, in input units.',
        },
      },
    },
    parameters: {
      description:
        'Weight names to analyse (exact tfjs names such as conv1/kernel; from code, RegExps too); default: every convolution and dense kernel (docs/method.md §1).',
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      ],
    },
    batchSize: {
      type: 'integer',
      minimum: 1,
      default: 256,
      description: 'Examples per forward/backward pass of the analysis.',
    },
    clip: {
      type: 'array',
      items: { type: 'number' },
      minItems: 2,
      maxItems: 2,
      description: 'Clip adversarial inputs to [low, high]; default none (as the authors).',
    },
    mode: {
      enum: ['layerwise', 'global'],
      default: 'layerwise',
      description: 'layerwise: each parameter on its own; global: all selected parameters at once.',
    },
    output: {
      enum: ['auto', 'logits', 'probabilities'],
      default: 'auto',
      description: 'How to read the model output; auto takes the logits before a final softmax.',
    },
    work: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['parameter', 'filter'],
        properties: {
          parameter: { type: 'string', minLength: 1 },
          filter: { enum: [...FILTER_IDS, ...FILTER_ALIAS_NAMES] },
        },
      },
      description:
        'Only these (parameter, filter) sweeps: a shard of the analysis (parameter (global) in global mode). The report holds just them, each value as the full analysis computes it. Default: every sweep.',
    },
    strategy: {
      enum: ['fast', 'naive'],
      default: 'fast',
      description:
        'fast (repeated removed sets skipped; the filtered models of a tensor evaluated together in batched passes, from cached activations when the adversarial set is fixed) or naive (every step from scratch); same results.',
    },
    variantMemoryMiB: {
      type: 'number',
      exclusiveMinimum: 0,
      description:
        'Memory budget (MiB) for the activations of the filtered models that the fast strategy evaluates together in one pass: more fit in larger budgets, fewer passes run; results do not depend on it. Default: on the native backends (tfjs-node) a quarter of the memory available to the process, from 512 to 4096 with `regenerate: true` (2048 where Node cannot tell) and to 1024 with `regenerate: false`; 512 on the others (wasm, webgl, cpu: a browser tab has less memory).',
    },
  },
} as const;

type Properties = typeof ANALYZE_OPTIONS_SCHEMA.properties;

/** The analysis options as JSON, as a recipe's `analysis` section holds them. */
export type AnalysisOptionsJson = FromSchema<typeof ANALYZE_OPTIONS_SCHEMA>;

/** Options of {@link analyze} (see {@link ANALYZE_OPTIONS_SCHEMA}). Only `epsilon` is required. */
export interface AnalyzeOptions extends Omit<AnalysisOptionsJson, 'parameters'> {
  /** Weight names or RegExps tested against weight names; default: conv and dense kernels. */
  parameters?: ParameterSelection;
  /** Called after each evaluated step. */
  onProgress?: (progress: AnalysisProgress) => void;
}

type Filled = WithDefaults<Properties, RequiredKeys<typeof ANALYZE_OPTIONS_SCHEMA>>;

/** Everything {@link analyze} needs, validated and with defaults filled in (frozen). */
export interface ResolvedOptions extends Readonly<Omit<Filled, 'filters' | 'parameters' | 'work'>> {
  /** The filters, aliases resolved. */
  readonly filters: FilterId[];
  /** The (parameter, filter) sweeps to run, aliases resolved; absent: all. */
  readonly work?: Array<{ parameter: string; filter: FilterId }>;
  /** The selection as given (default: conv and dense kernels). */
  readonly parameters?: ParameterSelection;
  readonly onProgress?: (progress: AnalysisProgress) => void;
}

/** Memory the process can still use, in MiB (Node ≥ 20.13); null where it cannot tell. */
function availableMemoryMiB(): number | null {
  const node = (globalThis as { process?: { availableMemory?: () => number } }).process;
  const bytes = typeof node?.availableMemory === 'function' ? node.availableMemory() : undefined;
  return bytes && Number.isFinite(bytes) ? bytes / 2 ** 20 : null;
}

/**
 * The default of `variantMemoryMiB` on `backend`. On tfjs-node's backends: a quarter of the memory
 * available to the process, from 512 to 4096 MiB (2048 where Node cannot tell) with FGSM
 * regenerated, because larger passes were measured faster there (ResNet-18 width 0.25, K = 25:
 * 55 s at 512 MiB, 38 s at 2048, 29 s at 4096 with the whole process peaking at 3.8 GB, 30 s at
 * 8192). With a fixed adversarial set at most 1024: its passes run only the layers after the
 * ablated one, forward, so they are short, and a larger budget costs more in first-touched memory
 * than it saves (ResNet-18, first analysis in a process: 5.9 s at 1024 MiB, 7.4 s at 2048, 9.7 s
 * at 4096; the small CNN the same at all three). 512 elsewhere (wasm, webgl, cpu: a browser tab
 * has less memory).
 */
export function defaultVariantMemoryMiB(
  backend: string,
  availableMiB: number | null = availableMemoryMiB(),
  regenerate = true,
): number {
  if (backend !== 'tensorflow') return 512;
  const cap = regenerate ? 4096 : 1024;
  if (availableMiB === null) return Math.min(2048, cap);
  return Math.floor(Math.min(cap, Math.max(512, availableMiB / 4)));
}

/** Resolved options recorded in a report (the selection becomes the analysed weight names). */
export type ResolvedAnalysisOptions = Omit<
  Filled,
  'filters' | 'parameters' | 'output' | 'strategy' | 'work' | 'variantMemoryMiB'
> & { filters: FilterId[]; parameters: string[] };

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true });
const validate = ajv.compile(ANALYZE_OPTIONS_SCHEMA);

/** Options objects made by {@link resolveAnalyzeOptions}: passing one again skips validation. */
const resolved = new WeakSet<object>();

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
  const anyOf = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const lines = errors.map((e) => {
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
    const value = show(valueAt(data, e.instancePath));
    if (e.keyword === 'anyOf') {
      const description = (e.parentSchema as { description?: string } | undefined)?.description;
      return `${where}: ${label} '${path}' does not match any allowed form${description ? ` (${description})` : ''}; got ${value}`;
    }
    // The failed branches of an anyOf say less than its summary line.
    if ([...anyOf].some((p) => e.instancePath.startsWith(p)) && e.schemaPath.includes('anyOf')) {
      return undefined;
    }
    const allowed =
      e.keyword === 'enum'
        ? `: one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map(show).join(', ')}`
        : '';
    return `${where}: ${label} '${path}' ${e.message}${allowed}; got ${value}`;
  });
  return [...new Set(lines.filter((l): l is string => l !== undefined))];
}

/** A problem with one option that the schema cannot see: which option, and what is wrong. */
export interface OptionProblem {
  /** The option's name (`pgd`, `clip`, `filters`). */
  option: string;
  /** What is wrong, with the value received, e.g. `must be [low, high] with low < high; got [1,0]`. */
  problem: string;
}

/**
 * Rules across analysis options that the schema cannot say (PGD settings need attack 'pgd',
 * `clip` is ordered, no filter twice counting aliases). Used by {@link analyze} and by the
 * recipe validator, each formatting the option's place its own way.
 */
export function analysisOptionProblems(
  options: Pick<AnalysisOptionsJson, 'attack' | 'pgd' | 'clip' | 'filters'>,
): OptionProblem[] {
  const problems: OptionProblem[] = [];
  if (options.pgd && options.attack !== 'pgd') {
    problems.push({
      option: 'pgd',
      problem: `is only used with attack "pgd"; got attack ${show(options.attack ?? 'fgsm')}`,
    });
  }
  if (options.clip && !(options.clip[0] < options.clip[1])) {
    problems.push({
      option: 'clip',
      problem: `must be [low, high] with low < high; got ${show(options.clip)}`,
    });
  }
  const filters = (options.filters ?? []).map((f) => FILTER_ALIASES[f] ?? f);
  if (new Set(filters).size !== filters.length) {
    problems.push({
      option: 'filters',
      problem: `names the same filter twice (h_a = highpass, h_b = lowpass, h_c = pulse); got ${show(options.filters)}`,
    });
  }
  return problems;
}

/** A copy of arrays and plain objects (so that freezing the result leaves the caller's alone). */
function copyPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyPlain);
  if (
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copyPlain(v)]));
  }
  return value;
}

/** The options as the schema sees them (a copy): RegExps as their source text, no callback. */
function jsonView(options: AnalyzeOptions): Record<string, unknown> {
  const { onProgress: _onProgress, ...rest } = options;
  const sel = options.parameters;
  const asText = (s: unknown) => (s instanceof RegExp ? String(s) : s);
  const view = copyPlain(rest) as Record<string, unknown>;
  if (sel !== undefined) view.parameters = Array.isArray(sel) ? sel.map(asText) : asText(sel);
  return view;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !(value instanceof RegExp)) {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates analysis options and fills in the defaults of {@link ANALYZE_OPTIONS_SCHEMA};
 * throws one error listing every problem (the option, the value, what is allowed). The result
 * is frozen; passing it again (to {@link analyze}, say) returns it without validating again.
 */
export function resolveAnalyzeOptions(options: AnalyzeOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new Error(
      `analyze: options must be an object with at least { epsilon }; got ${show(options)}`,
    );
  }
  if (resolved.has(options)) return options as ResolvedOptions;
  const view = jsonView(options);
  const problems = validate(view)
    ? analysisOptionProblems(view as AnalysisOptionsJson).map(
        (p) => `analyze: option '${p.option}' ${p.problem}`,
      )
    : describeSchemaErrors(validate.errors ?? [], view, 'analyze');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    problems.push(
      `analyze: option 'onProgress' must be a function; got ${show(options.onProgress)}`,
    );
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));

  // The view now holds every default; keep the schema's order, whatever the caller's.
  const filled = view as unknown as Filled;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(ANALYZE_OPTIONS_SCHEMA.properties) as Array<keyof Properties>) {
    if (filled[key] !== undefined) out[key] = filled[key];
  }
  out.filters = filled.filters.map((f) => FILTER_ALIASES[f] ?? f);
  if (filled.work) {
    out.work = filled.work.map((w) => ({ ...w, filter: FILTER_ALIASES[w.filter] ?? w.filter }));
  }
  if (filled.attack === 'pgd') out.pgd = filled.pgd ?? defaultPgdSettings(filled.epsilon);
  const sel = options.parameters;
  if (sel !== undefined) out.parameters = Array.isArray(sel) ? [...sel] : sel;
  if (options.onProgress) out.onProgress = options.onProgress;
  const result = deepFreeze(out) as unknown as ResolvedOptions;
  resolved.add(result);
  return result;
}

/** The options a report records: the resolved options, with the weights actually analysed. */
export function reportOptions(
  options: ResolvedOptions,
  parameters: string[],
): ResolvedAnalysisOptions {
  const {
    parameters: _selection,
    onProgress: _onProgress,
    output: _output,
    strategy: _strategy,
    work: _work,
    variantMemoryMiB: _variantMemoryMiB,
    ...recorded
  } = options;
  return structuredClone({ ...recorded, parameters }) as ResolvedAnalysisOptions;
}
