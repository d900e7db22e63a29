/**
 * `npm run reproduce -- --sensitivity`: does any setting of selective retraining (score × rule ×
 * tolerance) make the analysis beat freezing as many layers at random?
 *
 * Per seed, one run of the system's recipe with the normal, selective and random-freeze arms
 * (the grid's first setting), then for every other setting a fork of that run after its `train`
 * and normal phases (`forkRun`: same checkpoint, same normal arm) continued with that setting's
 * selective and random-freeze arms. Writes `runs/sensitivity-<time>/`: the run folders,
 * `sensitivity.json` and `sensitivity.md` (rewritten after every run, so an interrupted study keeps
 * what finished).
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { SCORE_IDS } from '../src/analysis/types';
import type { Comparison } from '../src/experiment/comparison';
import { CHECKPOINT_FILES } from '../src/experiment/checkpoint';
import { forkRun } from '../src/experiment/fork';
import { readJsonFile, RunFolder, timestamp } from '../src/experiment/run-folder';
import type { CheckpointState } from '../src/experiment/run-context';
import type { Progress } from '../src/experiment/progress';
import { runRecipe, type RunRecipeOptions } from '../src/experiment/runner';
import type { Recipe } from '../src/experiment/schema';
import {
  cellName,
  cellOverrides,
  sensitivityCells,
  sensitivitySentences,
  sensitivityTable,
  summarizeCell,
  type SensitivityCell,
  type SensitivityGrid,
} from '../src/experiment/sensitivity';
import { loadRecipe } from '../src/experiment/validate';
import { UsageError } from './main';
import { QUICK, systemRecipes } from './systems';

const ARMS = 'retraining.arms=["normal","selective","random-freeze"]';

/** The grid when no axis is given: every score, both rules, a strict and a loose τ. */
export const DEFAULT_GRID: SensitivityGrid = {
  scores: [...SCORE_IDS],
  rules: ['any', 'all'],
  tolerances: [0.02, 0.05],
};

/** Options of {@link sensitivity}. */
export interface SensitivityOptions {
  /** The system's recipe file. */
  recipe: string;
  seeds: number[];
  grid: SensitivityGrid;
  /** `field=value` overrides of every run (after the seed's). */
  overrides?: string[];
  /** Parent of the output folder; default `runs`. */
  outDir?: string;
  /** The command line, recorded in the results. */
  command?: string;
  log?: (line: string) => void;
  /** Progress of each run; default the runner's (bars on a terminal, plain lines otherwise). */
  progress?: () => Progress;
  /** Stops the study after the current run. */
  signal?: AbortSignal;
}

/** One finished run of the study. */
interface StudyRun {
  cell: SensitivityCell;
  seed: number;
  /** The run folder, relative to the study's folder. */
  dir: string;
  comparison: Comparison;
}

/**
 * The selective arm's refreshes in a run folder (from its final checkpoint's history), and how
 * many of them froze nothing because every analysed weight was fragile.
 */
function refreshesOf(runDir: string, seed: number): { skipped: number; refreshes: number } {
  const folder = RunFolder.open(runDir);
  const phase = `selective-s${seed}`;
  const epochs = folder.readRecipe().retraining.epochs;
  const file = path.join(folder.checkpointDir(phase, epochs), CHECKPOINT_FILES.state);
  if (!folder.exists(file)) return { skipped: 0, refreshes: 0 };
  const history = folder.readJson<CheckpointState>(file).selective?.history ?? [];
  const skipped = history.filter((r) => r.skipped && /every trainable weight/.test(r.skipped));
  return { skipped: skipped.length, refreshes: history.length };
}

/** The recipe of one cell and seed. */
function cellRecipe(options: SensitivityOptions, cell: SensitivityCell, seed: number): Recipe {
  const base = loadRecipe(options.recipe);
  return loadRecipe(options.recipe, [
    `name=${base.name}-${cellName(cell)}-s${seed}`,
    `training.seed=${seed}`,
    `dataset.seed=${seed}`,
    `retraining.seeds=[${seed}]`,
    ARMS,
    ...cellOverrides(cell),
    ...(options.overrides ?? []),
  ]);
}

/** Writes `sensitivity.json` and `sensitivity.md` of the runs so far; returns the Markdown. */
function writeStudy(options: SensitivityOptions, dir: string, runs: StudyRun[], minutes: number) {
  const cells = sensitivityCells(options.grid);
  const summaries = cells.flatMap((cell) => {
    const own = runs.filter((r) => cellName(r.cell) === cellName(cell));
    if (own.length === 0) return [];
    const counts = own.map((r) => refreshesOf(path.join(dir, r.dir), r.seed));
    const allFragile = {
      skipped: counts.reduce((sum, c) => sum + c.skipped, 0),
      refreshes: counts.reduce((sum, c) => sum + c.refreshes, 0),
    };
    const comparisons = own.map((r) => r.comparison);
    return [summarizeCell(cell, comparisons, cells.length, allFragile)];
  });
  const json = { command: options.command, recipe: options.recipe, seeds: options.seeds };
  fs.writeFileSync(
    path.join(dir, 'sensitivity.json'),
    JSON.stringify({ ...json, grid: options.grid, minutes, summaries, runs }, null, 2),
  );
  const text = [
    `# Sensitivity: selective vs random-freeze (${path.basename(options.recipe)})`,
    '',
    `Command: \`${options.command ?? 'npm run reproduce -- --sensitivity'}\`; seeds ` +
      `${options.seeds.join(', ')}; ${minutes.toFixed(1)} min in all. Gains in accuracy points, ` +
      'paired over seeds, with t-based 95% intervals.',
    '',
    sensitivityTable(summaries),
    '',
    ...sensitivitySentences(summaries).flatMap((line) => [line, '']),
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'sensitivity.md'), text);
  return text;
}

/** Runs one cell and seed: the seed's first run in full, the others as forks of it. */
async function runCell(
  options: SensitivityOptions,
  dir: string,
  cell: SensitivityCell,
  seed: number,
  base: string | undefined,
): Promise<{ dir: string; comparison?: Comparison; status: string }> {
  const recipe = cellRecipe(options, cell, seed);
  const run: RunRecipeOptions = {
    outDir: dir,
    report: false,
    signal: options.signal,
    progress: options.progress?.(),
  };
  if (base) {
    const fork = forkRun(base, dir, recipe, ['train', `normal-s${seed}`]);
    run.resume = fork.dir;
  }
  const result = await runRecipe(recipe, run);
  return { dir: result.dir, comparison: result.comparison, status: result.status };
}

/** Runs the study; returns its folder and whether it finished. */
export async function sensitivity(
  options: SensitivityOptions,
): Promise<{ dir: string; status: 'finished' | 'killed' }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const cells = sensitivityCells(options.grid);
  // Bad recipes or overrides fail here, before anything runs.
  for (const cell of cells) cellRecipe(options, cell, options.seeds[0]);
  const dir = path.resolve(options.outDir ?? 'runs', `sensitivity-${timestamp()}`);
  fs.mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const runs: StudyRun[] = [];
  for (const seed of options.seeds) {
    let base: string | undefined;
    for (const cell of cells) {
      if (options.signal?.aborted) return { dir, status: 'killed' };
      log(`\n== seed ${seed}, ${cellName(cell)}${base ? ` (fork of ${path.basename(base)})` : ''}`);
      const result = await runCell(options, dir, cell, seed, base);
      if (result.status !== 'finished' || !result.comparison) return { dir, status: 'killed' };
      base ??= result.dir;
      runs.push({ cell, seed, dir: path.relative(dir, result.dir), comparison: result.comparison });
      writeStudy(options, dir, runs, (Date.now() - started) / 60000);
    }
  }
  log(`\n${writeStudy(options, dir, runs, (Date.now() - started) / 60000)}\nwritten: ${dir}/`);
  return { dir, status: 'finished' };
}

const HELP = `Usage: npm run reproduce -- --sensitivity [options]

Selective vs random-freeze retraining over a grid of selective settings (score × rule × τ), from
one trained checkpoint per seed: does any setting make the analysis beat freezing as many layers at
random? Writes runs/sensitivity-<time>/ (run folders, sensitivity.json, sensitivity.md).

Options:
  --systems <s>        one system of recipes/reproduce/ (default small_cnn)
  --recipes <file>     a recipe file instead
  --seeds <n>          seeds 0..n-1 (default 5; 1 with --quick)
  --scores <a,b>       default ${DEFAULT_GRID.scores.join(',')}
  --rules <a,b>        any, all (default ${DEFAULT_GRID.rules.join(',')})
  --tolerances <a,b>   τ values deciding freezing (default ${DEFAULT_GRID.tolerances.join(',')})
  --quick              small sizes and 1 + 1 epochs: a smoke run
  --set <f>=<v>        any other recipe field, repeatable
  --out <dir>          parent of the output folder (default: runs)
  --summarize <dir>    rewrite a study folder's sensitivity.json/.md from its runs, and print it
  -h, --help           this help`;

function list<T extends string>(value: unknown, allowed: readonly T[], option: string): T[] {
  const items = String(value).split(',').filter(Boolean) as T[];
  const bad = items.filter((i) => !allowed.includes(i));
  if (bad.length || items.length === 0) {
    throw new UsageError(`${option}: expected a list of ${allowed.join(', ')}; got '${value}'`);
  }
  return items;
}

function gridOf(values: Record<string, unknown>): SensitivityGrid {
  const tolerances =
    values.tolerances === undefined
      ? DEFAULT_GRID.tolerances
      : String(values.tolerances).split(',').map(Number);
  if (tolerances.some((t) => !(t >= 0))) {
    throw new UsageError(`--tolerances: expected numbers ≥ 0; got '${values.tolerances}'`);
  }
  return {
    scores:
      values.scores === undefined
        ? DEFAULT_GRID.scores
        : list(values.scores, SCORE_IDS, '--scores'),
    rules:
      values.rules === undefined
        ? DEFAULT_GRID.rules
        : list(values.rules, ['any', 'all'], '--rules'),
    tolerances,
  };
}

/**
 * Rewrites `sensitivity.json` and `sensitivity.md` of a study folder from its runs (after a
 * change to how the table is written); returns the Markdown.
 */
export function summarizeStudy(dir: string): string {
  const study = readJsonFile<SensitivityOptions & { minutes: number; runs: StudyRun[] }>(
    path.join(dir, 'sensitivity.json'),
    'a sensitivity study (npm run reproduce -- --sensitivity)',
  );
  return writeStudy(study, dir, study.runs, study.minutes);
}

/** The command line of the sensitivity study; returns the exit code. */
export async function sensitivityMain(argv: string[]): Promise<number> {
  let options: SensitivityOptions;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        systems: { type: 'string' },
        recipes: { type: 'string' },
        seeds: { type: 'string' },
        scores: { type: 'string' },
        rules: { type: 'string' },
        tolerances: { type: 'string' },
        quick: { type: 'boolean' },
        set: { type: 'string', multiple: true },
        out: { type: 'string' },
        summarize: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (values.summarize) {
      console.log(summarizeStudy(values.summarize));
      return 0;
    }
    const recipes = values.recipes
      ? String(values.recipes).split(',')
      : systemRecipes(String(values.systems ?? 'small_cnn'));
    if (recipes.length !== 1) throw new UsageError('--sensitivity studies one system at a time');
    const count = Number(values.seeds ?? (values.quick ? 1 : 5));
    if (!Number.isInteger(count) || count < 1) {
      throw new UsageError(`--seeds must be a positive integer; got ${values.seeds}`);
    }
    options = {
      recipe: recipes[0],
      seeds: Array.from({ length: count }, (_, i) => i),
      grid: gridOf(values),
      overrides: [...(values.quick ? QUICK : []), ...(values.set ?? [])],
      outDir: values.out,
      command: ['npm run reproduce -- --sensitivity', ...argv].join(' '),
    };
    loadRecipe(options.recipe, options.overrides);
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const stop = new AbortController();
  const onSigint = () => (stop.signal.aborted ? process.exit(130) : stop.abort());
  process.on('SIGINT', onSigint);
  try {
    const result = await sensitivity({ ...options, signal: stop.signal });
    return result.status === 'finished' ? 0 : 130;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
