import Ajv, { ErrorObject } from 'ajv';
import { DatasetOptionsError } from './errors';

/** Which part of a dataset to read. */
export type DatasetSplit = 'train' | 'validation' | 'test';

/** Options every loader accepts. */
export interface CommonDatasetOptions {
  /**
   * `train`, `validation` (a seeded part of the training files, see `validationFraction`) or
   * `test` (the held-out files); default `train`.
   */
  split?: DatasetSplit;
  /**
   * Fraction of the training files held out as the `validation` split, chosen by `seed`; the
   * `train` split is the rest. In [0, 1); default 0 (no validation split).
   */
  validationFraction?: number;
  /** Seed of the train/validation split, of `limit`'s subset and of the shuffles; default 0. */
  seed?: number;
  /**
   * Keep this many examples of the split: a random subset chosen by `seed` (the same for the
   * same seed), for quick runs; default: all.
   */
  limit?: number;
  /**
   * Shuffle the examples at every pass over the dataset (a new seeded order per pass);
   * default true for `train`, false for `validation` and `test` (file order).
   */
  shuffle?: boolean;
  /**
   * Yield batches of this many examples (`xs [n, h, w, c]`, `ys [n, classes]`; the last batch
   * may be smaller), built directly from the files, which is faster than `dataset.batch(n)`;
   * default: single examples (`xs [h, w, c]`, `ys [classes]`).
   */
  batchSize?: number;
  /**
   * Normalise the pixels as docs/method.md §8 says (each loader documents how); false gives pixels
   * in [0, 1]; default true.
   */
  normalize?: boolean;
}

/** {@link CommonDatasetOptions} with the defaults filled in. */
export interface ResolvedCommonOptions {
  split: DatasetSplit;
  validationFraction: number;
  seed: number;
  limit?: number;
  shuffle: boolean;
  batchSize?: number;
  normalize: boolean;
}

const COMMON_PROPERTIES = {
  split: { enum: ['train', 'validation', 'test'] },
  validationFraction: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
  seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
  limit: { type: 'integer', minimum: 1 },
  shuffle: { type: 'boolean' },
  batchSize: { type: 'integer', minimum: 1 },
  normalize: { type: 'boolean' },
};

const ajv = new Ajv({ allErrors: true });

function describe(error: ErrorObject, options: Record<string, unknown>): string {
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return `unknown option '${extra}'`;
  }
  if (error.keyword === 'required') {
    return `option '${(error.params as { missingProperty: string }).missingProperty}' is required`;
  }
  if (error.instancePath === '') return `options ${error.message ?? 'are invalid'}`;
  const key = error.instancePath.slice(1).split('/')[0];
  let allowed = error.message ?? 'is invalid';
  if (error.keyword === 'enum') {
    const values = (error.params as { allowedValues: unknown[] }).allowedValues;
    allowed = `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `option '${key}' ${allowed}; got ${JSON.stringify(options[key])}`;
}

/**
 * Builds a validator for a loader's options: the common ones plus `extra` JSON-schema
 * properties. It throws a {@link DatasetOptionsError} that names the loader, each offending
 * option, the value received and what is allowed, and returns the common options resolved.
 */
export function optionsValidator(
  loader: string,
  extra: Record<string, object>,
  required: string[] = [],
): (options: object) => ResolvedCommonOptions {
  const properties = { ...COMMON_PROPERTIES, ...extra };
  const validate = ajv.compile({
    type: 'object',
    properties,
    required,
    additionalProperties: false,
  });
  return (options) => {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new DatasetOptionsError(
        `${loader}: options must be an object; got ${JSON.stringify(options)}`,
      );
    }
    const given = options as Record<string, unknown>;
    if (!validate(given)) {
      const problems = (validate.errors ?? []).map((e) => describe(e, given));
      const allowed = Object.keys(properties).join(', ');
      const hint = problems.some((p) => p.startsWith('unknown option'))
        ? ` (options: ${allowed})`
        : '';
      throw new DatasetOptionsError(`${loader}: ${[...new Set(problems)].join('; ')}${hint}`);
    }
    const split = (given.split as DatasetSplit | undefined) ?? 'train';
    const validationFraction = (given.validationFraction as number | undefined) ?? 0;
    if (split === 'validation' && validationFraction === 0) {
      throw new DatasetOptionsError(
        `${loader}: split 'validation' needs option 'validationFraction' in (0, 1), the fraction of ` +
          `the training files to hold out; got ${validationFraction}`,
      );
    }
    return {
      split,
      validationFraction,
      seed: (given.seed as number | undefined) ?? 0,
      limit: given.limit as number | undefined,
      shuffle: (given.shuffle as boolean | undefined) ?? split === 'train',
      batchSize: given.batchSize as number | undefined,
      normalize: (given.normalize as boolean | undefined) ?? true,
    };
  };
}
