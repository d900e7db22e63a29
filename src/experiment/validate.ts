import * as fs from 'fs';
import Ajv, { type ErrorObject } from 'ajv';
import { FILTER_ALIASES } from '../analysis/filters';
import { analysisOptionProblems } from '../analysis/options';
import { FILTER_IDS } from '../analysis/types';
import { RECIPE_SCHEMA, type Recipe } from './schema';

/** A recipe that cannot be run: every problem, each with its JSON path and what is allowed. */
export class RecipeError extends Error {
  constructor(
    /** Where the recipe came from (a file name, or `recipe`). */
    readonly source: string,
    /** One sentence per problem, each starting with the JSON path (`/training/epochs`). */
    readonly problems: string[],
  ) {
    super(
      `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the recipe:\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'RecipeError';
  }
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
const validateSchema = ajv.compile(RECIPE_SCHEMA);

function show(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function valueAt(data: unknown, pointer: string): unknown {
  let value: unknown = data;
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    value = (value as Record<string, unknown> | undefined)?.[key];
  }
  return value;
}

/** The schema node that an ajv error's `schemaPath` points into (for `description`s). */
function propertyDescription(pointer: string): string | undefined {
  let node: unknown = RECIPE_SCHEMA;
  for (const part of pointer.split('/').slice(1)) {
    const props = (node as { properties?: Record<string, unknown> }).properties;
    if (!props || !(part in props)) return undefined;
    node = props[part];
  }
  return (node as { description?: string }).description;
}

function describe(error: ErrorObject, data: unknown): string | undefined {
  const at = error.instancePath || '/';
  switch (error.keyword) {
    case 'additionalProperties': {
      const extra = (error.params as { additionalProperty: string }).additionalProperty;
      const parentSchema = error.parentSchema as { properties?: Record<string, unknown> };
      const allowed = Object.keys(parentSchema.properties ?? {}).join(', ');
      return `${error.instancePath}/${extra}: unknown field; allowed here: ${allowed}`;
    }
    case 'required': {
      const missing = (error.params as { missingProperty: string }).missingProperty;
      const where = `${error.instancePath}/${missing}`;
      const description = propertyDescription(where);
      return `${where}: is required${description ? ` (${description})` : ''}`;
    }
    case 'enum': {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
      return `${at}: must be one of ${allowed.map(show).join(', ')}; got ${show(valueAt(data, error.instancePath))}`;
    }
    case 'anyOf':
    case 'if':
      // The branches' own errors say more; anyOf gets one summary line below.
      return undefined;
    default:
      return `${at}: ${error.message ?? 'is invalid'}; got ${show(valueAt(data, error.instancePath))}`;
  }
}

/** Problems ajv finds, one line each, with the errors inside failed `anyOf` branches merged. */
function schemaProblems(errors: ErrorObject[], data: unknown): string[] {
  const anyOfPaths = new Set(
    errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath),
  );
  const problems: string[] = [];
  for (const path of anyOfPaths) {
    const description = propertyDescription(path);
    problems.push(
      `${path}: does not match any allowed form${description ? ` (${description})` : ''}; got ${show(valueAt(data, path))}`,
    );
  }
  for (const error of errors) {
    if (anyOfPaths.has(error.instancePath) && error.schemaPath.includes('anyOf')) continue;
    const text = describe(error, data);
    if (text) problems.push(text);
  }
  return [...new Set(problems)];
}

/** Rules that span fields, which the schema cannot say. */
function crossFieldProblems(recipe: Recipe): string[] {
  const problems: string[] = [];
  const { model, dataset, training, analysis, retraining } = recipe;
  if (model.architecture === 'small_cnn' && model.width !== 1) {
    problems.push(`/model/width: small_cnn has no width option; use 1 (got ${model.width})`);
  }
  if (dataset.name !== 'mnist' && dataset.dir === undefined) {
    problems.push(
      `/dataset/dir: is required for ${dataset.name} (the folder of its files); only mnist has bundled digits`,
    );
  }
  if (dataset.name === 'mnist' && dataset.dir === undefined) {
    const train = (dataset.trainSize ?? 8000) + (dataset.validationSize ?? 0);
    const test = dataset.testSize ?? 2000;
    if (train + test > 10000) {
      problems.push(
        `/dataset: trainSize + ${dataset.validationSize ? 'validationSize + ' : ''}testSize = ${train + test} exceeds the 10,000 bundled MNIST digits; ` +
          'lower them or give dataset.dir (the full MNIST IDX files)',
      );
    }
  }
  const testSize =
    dataset.testSize ?? (dataset.name === 'mnist' && !dataset.dir ? 2000 : undefined);
  if (dataset.validationSize !== undefined) {
    if (analysis.examples > dataset.validationSize) {
      problems.push(
        `/analysis/examples: ${analysis.examples} is more than the ${dataset.validationSize} validation examples (dataset.validationSize); ` +
          'the analysis uses the held-out training examples when validationSize is given',
      );
    }
  } else if (testSize !== undefined && analysis.examples > testSize) {
    problems.push(
      `/analysis/examples: ${analysis.examples} is more than the ${testSize} test examples (dataset.testSize); ` +
        'the analysis uses the first examples of the test set',
    );
  }
  for (const { option, problem } of analysisOptionProblems(analysis)) {
    problems.push(`/analysis/${option}: ${problem}`);
  }
  const filters = analysis.filters.map((f) => FILTER_ALIASES[f] ?? f);
  if (retraining.enabled && !analysis.enabled) {
    problems.push(
      '/retraining/enabled: selective retraining needs the analysis labels; set analysis.enabled to true',
    );
  }
  if (retraining.enabled && dataset.validationSize === undefined) {
    problems.push(
      '/dataset/validationSize: retraining needs a validation split, so that the labels that decide freezing never see the test set on which the arms are scored; set dataset.validationSize (≥ analysis.examples)',
    );
  }
  if (retraining.enabled && training.epochs % analysis.every !== 0) {
    problems.push(
      `/analysis/every: the retraining arms start from the labels of training's last epoch, so it must be analysed: training.epochs (${training.epochs}) must be a multiple of analysis.every (${analysis.every})`,
    );
  }
  if (!retraining.arms.includes('normal')) {
    problems.push(
      `/retraining/arms: must include "normal", the reference of every gain; got ${show(retraining.arms)}`,
    );
  }
  if (retraining.arms.includes('random-freeze') && !retraining.arms.includes('selective')) {
    problems.push(
      `/retraining/arms: "random-freeze" freezes as many layers as "selective" did, so it needs "selective" too; got ${show(retraining.arms)}`,
    );
  }
  if (Array.isArray(retraining.filters)) {
    const missing = retraining.filters.filter((f) => !filters.includes(f));
    if (missing.length) {
      problems.push(
        `/retraining/filters: ${show(missing)} not swept by the analysis (analysis.filters); allowed: ${FILTER_IDS.filter((f) => filters.includes(f)).join(', ')}`,
      );
    }
  }
  return problems;
}

/**
 * Validates a parsed recipe against `recipes/schema.json` and the cross-field rules, and fills in
 * every default. Nothing is loaded or trained here.
 * @param data the parsed JSON (it is not modified)
 * @param source where it came from, for the error message
 * @throws RecipeError listing every problem, each with its JSON path, the value and what is allowed
 */
export function validateRecipe(data: unknown, source = 'recipe'): Recipe {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new RecipeError(source, [`/: a recipe must be a JSON object; got ${show(data)}`]);
  }
  const copy = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
  if (!validateSchema(copy)) {
    throw new RecipeError(source, schemaProblems(validateSchema.errors ?? [], data));
  }
  const recipe = copy as unknown as Recipe;
  const problems = crossFieldProblems(recipe);
  if (problems.length) throw new RecipeError(source, problems);
  return recipe;
}

/** Path segments that would reach an object's prototype instead of a recipe field. */
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'];

/**
 * Applies `path=value` overrides (the CLI's `--set`) to a parsed recipe: `path` is a dotted field
 * path (`training.seed`, `retraining.seeds`), `value` is read as JSON when it parses (`3`,
 * `[0,1]`, `true`, `"x"`) and as a string otherwise. Returns a new object; validation comes after.
 * @throws RecipeError for an override without `=`, an empty path, a path through a non-object, or
 *   a path segment `__proto__`, `constructor` or `prototype`
 */
export function applyOverrides(
  data: unknown,
  overrides: readonly string[],
  source = 'recipe',
): unknown {
  const copy = JSON.parse(JSON.stringify(data ?? {})) as Record<string, unknown>;
  const problems: string[] = [];
  for (const override of overrides) {
    const eq = override.indexOf('=');
    const keys = eq < 0 ? [] : override.slice(0, eq).split('.');
    if (eq < 0 || keys.some((k) => k === '')) {
      problems.push(`--set ${override}: expected <field.path>=<value>, e.g. training.seed=1`);
      continue;
    }
    const forbidden = keys.find((k) => FORBIDDEN_KEYS.includes(k));
    if (forbidden !== undefined) {
      problems.push(
        `--set ${override}: '${forbidden}' cannot be a field path segment (recipe fields are plain names such as training.seed)`,
      );
      continue;
    }
    const text = override.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    let node: Record<string, unknown> = copy;
    let ok = true;
    for (const [i, key] of keys.slice(0, -1).entries()) {
      const next = node[key];
      if (next === undefined) node[key] = {};
      else if (next === null || typeof next !== 'object' || Array.isArray(next)) {
        problems.push(
          `--set ${override}: /${keys.slice(0, i + 1).join('/')} is ${show(next)}, not an object`,
        );
        ok = false;
        break;
      }
      node = node[key] as Record<string, unknown>;
    }
    if (ok) node[keys[keys.length - 1]] = value;
  }
  if (problems.length) throw new RecipeError(source, problems);
  return copy;
}

/**
 * Reads and validates a recipe file, after applying `overrides` (see {@link applyOverrides}).
 * @throws RecipeError when the file cannot be read, is not JSON, or is not a valid recipe
 */
export function loadRecipe(file: string, overrides: readonly string[] = []): Recipe {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RecipeError(file, [`/: cannot read the file: ${(err as Error).message}`]);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new RecipeError(file, [`/: not valid JSON: ${(err as Error).message}`]);
  }
  if (overrides.length === 0) return validateRecipe(data, file);
  const source = `${file} with ${overrides.map((o) => `--set ${o}`).join(' ')}`;
  return validateRecipe(applyOverrides(data, overrides, source), source);
}
