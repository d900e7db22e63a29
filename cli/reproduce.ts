/**
 * `npm run reproduce`: does selective retraining raise adversarial accuracy (docs/method.md §7)?
 *
 * Runs the product as a user would, through the library the CLI uses: for each system (a recipe
 * of `recipes/reproduce/`, or any recipe given with `--recipes`) and each seed, the run that
 * `tfjs-antifragile run <recipe> --set training.seed=<s> --set dataset.seed=<s> --set
 * retraining.seeds=[<s>]` makes (`runRecipe` with the run report) — train to a checkpoint, then
 * from that same checkpoint continue normal and selective retraining for the same epochs and
 * data order, measuring clean, FGSM and PGD accuracy — then the page of `tfjs-antifragile compare`
 * over all the runs. Writes `runs/reproduce-<time>/`: the run folders, `compare.html`, `results.json` and
 * `results.md` (mean ± std per system and arm). With `MLFLOW_TRACKING_URI` set, one MLflow parent
 * run holds the summary, each system-and-seed run is its child, and each of those has a child run
 * per arm.
 *
 * Options (`npm run reproduce -- --help`): `--systems` `--recipes` `--seeds` `--quick` `--out`
 * `--experiment`, the selective arm's settings (`--score` `--rule` `--granularity` `--tolerance`
 * `--every`) and any other recipe field with `--set`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { compareRuns, runResultLines, type CliIo } from './main';
import { MlflowClient, MlflowRun } from '../src/mlflow';
import { createProgress } from '../src/experiment/progress';
import { RUN_FILES, RunFolder, timestamp, type RunManifest } from '../src/experiment/run-folder';
import { runRecipe, type RunResult } from '../src/experiment/runner';
import { writeRunReport } from '../src/report/run-report';
import { gainMetrics } from '../src/experiment/comparison';
import { PGD_DEFAULTS_TEXT } from '../src/analysis/attacks';
import {
  summarizeSweep,
  sweepMarkdownTable,
  sweepGainSentences,
  type SweepEntry,
  type SystemSummary,
} from '../src/experiment/summary';
import type { Recipe } from '../src/experiment/schema';
import { loadRecipe, RecipeError } from '../src/experiment/validate';
import { DEFAULT_SYSTEMS, QUICK, SYSTEMS, systemRecipes } from './systems';
import { sensitivityMain } from './sensitivity';
import type { ShardId } from '../src/analysis/shards';
import { sweepPlan, sweepShardWork } from '../src/experiment/sweep-shards';
import { startSweepShard, shardArgumentOf, type SweepShardRun } from './sweep-shards';

/** Seeds when --seeds is not given: enough for a t-based interval to mean something. */
const DEFAULT_SEEDS = 5;

const HELP = `Usage: npm run reproduce -- [options]

Normal vs selective retraining from the same checkpoint (docs/method.md §7): the run of
'tfjs-antifragile run' per system and seed, then the page of 'tfjs-antifragile compare'. Writes
runs/reproduce-<time>/ (run folders, compare.html, results.json, results.md). With
MLFLOW_TRACKING_URI set: a parent MLflow run, a child per system and seed, a grandchild per arm.

Options:
  --systems <a,b>    systems of recipes/reproduce/: ${Object.keys(SYSTEMS).join(', ')}
                     (default: ${DEFAULT_SYSTEMS.join(', ')})
  --recipes <a,b>    recipe files instead (e.g. recipes/resnet18-cifar10.json for CIFAR-10)
  --seeds <n>        seeds 0..n-1 (default ${DEFAULT_SEEDS}; 1 with --quick); each seed sets training.seed,
                     dataset.seed and retraining.seeds
  --quick            small sizes and 1 + 1 epochs: a smoke run of the protocol
  --score <s>        selective arm: labels from adversarial (default), clean or difference
  --rule <r>         selective arm: fragile if 'any' (default) or 'all' filters say so
  --granularity <g>  selective arm: freeze the whole 'layer' (default) or the 'parameter' only
  --tolerance <t>    τ of the labels (analysis.tolerance; default the recipe's)
  --every <n>        refresh labels every n-th epoch of retraining (default the recipe's)
  --set <f>=<v>      any other recipe field, repeatable (as 'tfjs-antifragile run --set')
  --out <dir>        parent of the output folder (default: runs)
  --experiment <e>   MLflow experiment of all the runs (default: reproduce)
  --sensitivity      instead: selective vs random-freeze over score × rule × τ on one system
                     (npm run reproduce -- --sensitivity --help)
  --shard <i>/<n>    run only shard i of n of the (system, seed) runs (round-robin) into
                     <out>/reproduce-shard-<i>-of-<n>/; 'tfjs-antifragile merge' of the n shard
                     folders writes the results (README: sweeps on a cluster)
  --shards <n>       the same, with i from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)
  -h, --help         this help`;

/** Options of {@link reproduce}. */
export interface ReproduceOptions {
  /** Recipe files, one per system. */
  recipes: string[];
  /** Seeds; each is one run per recipe. */
  seeds: number[];
  /** `field=value` overrides for every run (after the seed's). */
  overrides?: string[];
  /** Parent of the output folder; default `runs`. */
  outDir?: string;
  /** MLflow experiment of every run; default `reproduce`. */
  experiment?: string;
  /** The command line, recorded in the results. */
  command?: string;
  /** Where each run's progress and result lines go, as the CLI's; default stdout/stderr. */
  io?: CliIo;
  /** Where the driver's own lines go; default stdout. */
  log?: (line: string) => void;
  /**
   * Run only this shard's (system, seed) runs (round-robin), into
   * `<outDir>/reproduce-shard-<i>-of-<n>/`, and write its `sweep-shard.json` for the merge.
   */
  shard?: ShardId;
}

/** What {@link reproduce} wrote. */
export interface ReproduceResult {
  /** The output folder. */
  dir: string;
  status: 'finished' | 'killed' | 'failed';
  /** The run folders, in order. */
  runs: string[];
  summaries: SystemSummary[];
  /** The MLflow parent run, when tracked. */
  mlflowRunId?: string;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function runSeconds(info: RunManifest): number {
  return info.invocations.reduce((sum, inv) => {
    if (!inv.ended) return sum;
    return sum + (Date.parse(inv.ended) - Date.parse(inv.started)) / 1000;
  }, 0);
}

/** One line of `results.md`: a system's protocol, as resolved from its recipe. */
function settingsLine(r: Recipe): string {
  const a = r.analysis;
  const t = r.retraining;
  const rule = Array.isArray(t.filters) ? t.filters.join('/') : t.filters;
  const refresh = t.every === 1 ? 'every epoch' : `every ${plural(t.every, 'epoch')}`;
  return (
    `- **${r.name}**: ${r.model.architecture}${r.model.width !== 1 ? ` (width ${r.model.width})` : ''} on ` +
    `${r.dataset.name} (${r.dataset.trainSize ?? 'all'} training, ${r.dataset.validationSize ?? 0} held out for the analysis, ` +
    `${r.dataset.testSize ?? 'all'} test); ${plural(r.training.epochs, 'epoch')} to the checkpoint, then ${t.epochs} per arm; ` +
    `${r.training.optimizer} ${r.training.learningRate}, batch ${r.training.batchSize}; ε ${a.epsilon}, PGD ${PGD_DEFAULTS_TEXT}; ` +
    `analysis K ${a.steps}, ${a.filters.join('/')}, regenerate ${a.regenerate}, ${a.examples} examples; selective arm: ` +
    `labels from Ψ_${t.score}, fragile if ${rule} filter(s) say so, frozen by ${t.granularity}, τ ${a.tolerance}, ` +
    `labels refreshed ${refresh}`
  );
}

/** Starts the MLflow parent run, or returns undefined (no server configured, or unreachable). */
async function startParent(
  options: ReproduceOptions,
  dir: string,
  log: (line: string) => void,
): Promise<MlflowRun | undefined> {
  if (!process.env.MLFLOW_TRACKING_URI) return undefined;
  try {
    const client = new MlflowClient();
    return await MlflowRun.start(client, {
      experimentName: options.experiment ?? 'reproduce',
      runName: path.basename(dir),
      params: {
        recipes: options.recipes.map((r) => path.basename(r)).join(','),
        seeds: options.seeds.join(','),
        overrides: (options.overrides ?? []).join(' ') || 'none',
      },
      tags: {
        'mlflow.source.name': 'npm run reproduce',
        'mlflow.source.type': 'LOCAL',
        'tfjs_antifragile.out_dir': dir,
        ...(options.command ? { 'tfjs_antifragile.command': options.command } : {}),
      },
      localDir: path.join(dir, 'mlflow'),
    });
  } catch (err) {
    log(`MLflow: no parent run (${(err as Error).message}); the runs go on without MLflow nesting`);
    return undefined;
  }
}

/** What a reproduction has done so far (what `results.json` / `results.md` report). */
export interface Sweep {
  dir: string;
  recipes: Recipe[];
  status: ReproduceResult['status'];
  runs: string[];
  entries: SweepEntry[];
  started: number;
}

/** Writes `results.json` and `results.md` of the sweep so far; returns the Markdown. */
export function writeResults(
  options: ReproduceOptions,
  sweep: Sweep,
  summaries: SystemSummary[],
): string {
  const { dir, recipes, status, runs, entries } = sweep;
  const minutes = (Date.now() - sweep.started) / 60000;
  const results = {
    command: options.command,
    recipes: options.recipes,
    seeds: options.seeds,
    overrides: options.overrides ?? [],
    status,
    minutes,
    runs: runs.map((r) => path.relative(dir, r)),
    resolvedRecipes: recipes,
    summaries,
    entries,
  };
  fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(results, null, 2));
  const text = [
    `# Normal vs selective retraining (${status})`,
    '',
    `Command: \`${options.command ?? 'npm run reproduce'}\`; seeds ${options.seeds.join(', ')}; ` +
      `${minutes.toFixed(1)} min in all.`,
    '',
    ...recipes.map(settingsLine),
    '',
    sweepMarkdownTable(summaries),
    '',
    ...sweepGainSentences(summaries).flatMap((line) => [line, '']),
    `Side by side: \`compare.html\`; each run: its folder's \`report.html\`.`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'results.md'), text);
  return text;
}

/** The `--set` overrides of one system-and-seed run: the seed's, the experiment's, the user's. */
function seedOverrides(options: ReproduceOptions, seed: number): string[] {
  return [
    `training.seed=${seed}`,
    `dataset.seed=${seed}`,
    `retraining.seeds=[${seed}]`,
    `tracking.mlflow.experimentName=${JSON.stringify(options.experiment ?? 'reproduce')}`,
    ...(options.overrides ?? []),
  ];
}

/** The `tfjs-antifragile run` command line that makes the same run as {@link runSeed}. */
function commandLine(
  options: ReproduceOptions,
  sweep: Sweep,
  file: string,
  seed: number,
  parent?: { runId: string },
): string {
  const args = [
    ...['run', file, '--out', sweep.dir],
    ...seedOverrides(options, seed).flatMap((o) => ['--set', o]),
    ...(parent ? ['--mlflow-parent', parent.runId] : []),
  ];
  return `tfjs-antifragile ${args.join(' ')}`;
}

/** One system-and-seed run (`runRecipe`, as `tfjs-antifragile run` does it). */
async function runSeed(
  options: ReproduceOptions,
  sweep: Sweep,
  run: { file: string; seed: number; signal: AbortSignal; parent?: { runId: string } },
): Promise<RunResult> {
  const { file, seed, signal, parent } = run;
  const overrides = seedOverrides(options, seed);
  const io: CliIo = options.io ?? {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
  };
  let result: RunResult;
  try {
    result = await runRecipe(loadRecipe(file, overrides), {
      reporter: writeRunReport,
      outDir: sweep.dir,
      progress: createProgress({ stream: io.progressStream, tty: io.tty }),
      signal,
      mlflowParentRunId: parent?.runId,
    });
  } catch (err) {
    throw new Error(
      `the run of ${path.basename(file)} (seed ${seed}) failed: ${(err as Error).message ?? err}`,
      { cause: err },
    );
  }
  for (const line of runResultLines(result)) io.out(line);
  return result;
}

/** Adds a finished run's comparison to the sweep. */
function addEntry(sweep: Sweep, result: RunResult, seed: number, file: string): void {
  if (!result.comparison) {
    throw new Error(
      `the run of ${path.basename(file)} (seed ${seed}) compared no retraining branches; ` +
        'reproduce needs retraining.enabled: true',
    );
  }
  const folder = RunFolder.open(result.dir);
  sweep.entries.push({
    system: folder.readJson<Recipe>(RUN_FILES.recipe).name,
    seed,
    comparison: result.comparison,
    seconds: runSeconds(folder.readInfo()),
  });
}

/** The parent run's summary metrics of one system: mean and std per arm, and the gains. */
export function summaryMetrics(s: SystemSummary): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const arm of ['start', 'normal', 'selective', 'gain'] as const) {
    for (const [metric, value] of Object.entries(s[arm])) {
      if (!value) continue;
      metrics[`${s.system}/${arm}_${metric}_mean`] = value.mean;
      metrics[`${s.system}/${arm}_${metric}_std`] = value.std;
    }
  }
  return Object.assign(metrics, gainMetrics(s.gains, s.system));
}

/** Logs the summary and files to the MLflow parent run and ends it. */
async function endParent(
  parent: MlflowRun,
  sweep: Sweep,
  summaries: SystemSummary[],
  text: string,
  failure: unknown,
  log: (line: string) => void,
): Promise<void> {
  for (const s of summaries) parent.logMetrics(summaryMetrics(s), 0);
  const { dir, status } = sweep;
  parent.logArtifact('results.md', text, 'text/markdown');
  const results = fs.readFileSync(path.join(dir, 'results.json'), 'utf8');
  parent.logArtifact('results.json', results, 'application/json');
  const page = path.join(dir, 'compare.html');
  if (fs.existsSync(page)) {
    parent.logArtifact('compare.html', fs.readFileSync(page, 'utf8'), 'text/html');
  }
  if (failure !== undefined) {
    parent.setTags({ 'tfjs_antifragile.error': String((failure as Error).message ?? failure) });
  }
  const ended = await parent.end(
    status === 'finished' ? 'FINISHED' : status === 'killed' ? 'KILLED' : 'FAILED',
    { timeoutMs: 15_000 },
  );
  if (ended.errors.length) log(`MLflow: ${ended.errors[0].message}`);
}

/** Writes the comparison page of the sweep's runs (`tfjs-antifragile compare`'s). */
export async function comparePage(sweep: Sweep, log: (line: string) => void): Promise<void> {
  if (sweep.runs.length === 0) return;
  try {
    for (const line of await compareRuns(sweep.runs, path.join(sweep.dir, 'compare.html'))) {
      log(line);
    }
  } catch (err) {
    log(`compare failed: ${(err as Error).message}`);
  }
}

/**
 * Runs the reproduction: the run of `tfjs-antifragile run` per recipe and seed (`runRecipe` as a
 * library, with the run report), then the page of `tfjs-antifragile compare` over them, and
 * writes `results.json` and `results.md` in `<outDir>/reproduce-<time>/`. Ctrl-C during a run
 * stops it after its current epoch; between runs it stops before the next run; either way what
 * finished is kept and summarised. A second Ctrl-C quits at once.
 */
export async function reproduce(options: ReproduceOptions): Promise<ReproduceResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  // A bad recipe or override fails here, before anything runs.
  const recipes = options.recipes.map((file) => loadRecipe(file, options.overrides ?? []));
  const shard: SweepShardRun | undefined = options.shard
    ? await startSweepShard(options, recipes, options.shard, log)
    : undefined;
  const dir = shard?.dir ?? path.resolve(options.outDir ?? 'runs', `reproduce-${timestamp()}`);
  fs.mkdirSync(dir, { recursive: true });
  const own = shard ? undefined : await startParent(options, dir, log);
  const parent = shard ? shard.parent : own;
  if (parent)
    log(`MLflow parent run ${parent.runId} (experiment ${options.experiment ?? 'reproduce'})`);
  const sweep: Sweep = {
    dir,
    recipes,
    status: 'finished',
    runs: [],
    entries: [],
    started: Date.now(),
  };

  let interrupted = false;
  let current: AbortController | undefined;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    if (current) log('Ctrl-C: stopping after the current epoch (press Ctrl-C again to quit now)');
    current?.abort();
  };
  process.on('SIGINT', onSigint);
  let failure: unknown;
  const plan = sweepPlan(options.recipes, options.seeds);
  const work = options.shard ? sweepShardWork(plan, options.shard) : plan.map((_, k) => k);
  try {
    for (const { recipe: file, seed } of work.map((k) => plan[k])) {
      if (interrupted) {
        sweep.status = 'killed';
        break;
      }
      log(
        `\n== ${path.basename(file)}, seed ${seed}: ${commandLine(options, sweep, file, seed, parent)}`,
      );
      // From here on Ctrl-C stops this run after its current epoch.
      current = new AbortController();
      const result = await runSeed(options, sweep, {
        file,
        seed,
        signal: current.signal,
        parent,
      }).finally(() => (current = undefined));
      sweep.runs.push(result.dir);
      if (result.status === 'killed') {
        sweep.status = 'killed';
        break;
      }
      addEntry(sweep, result, seed, file);
      writeResults(options, sweep, summarizeSweep(sweep.entries));
    }
  } catch (err) {
    sweep.status = 'failed';
    failure = err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }

  const summaries = summarizeSweep(sweep.entries);
  await comparePage(sweep, log);
  const text = writeResults(options, sweep, summaries);
  log(`\n${text}\nwritten: ${path.relative(process.cwd(), dir) || dir}/`);
  if (shard) shard.finish(sweep, work, log);
  else if (own) await endParent(own, sweep, summaries, text, failure, log);
  if (failure !== undefined) throw failure;
  return { dir, status: sweep.status, runs: sweep.runs, summaries, mlflowRunId: parent?.runId };
}

/** The command line of `npm run reproduce`; returns the exit code. */
export async function reproduceMain(argv: string[]): Promise<number> {
  if (argv.includes('--sensitivity')) {
    return sensitivityMain(argv.filter((arg) => arg !== '--sensitivity'));
  }
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        systems: { type: 'string' },
        recipes: { type: 'string' },
        seeds: { type: 'string' },
        quick: { type: 'boolean' },
        score: { type: 'string' },
        rule: { type: 'string' },
        granularity: { type: 'string' },
        tolerance: { type: 'string' },
        every: { type: 'string' },
        set: { type: 'string', multiple: true },
        out: { type: 'string' },
        experiment: { type: 'string' },
        shard: { type: 'string' },
        shards: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const usage = (message: string) => {
    console.error(`${message}\n\n${HELP}`);
    return 2;
  };
  if (values.systems && values.recipes) return usage('give --systems or --recipes, not both');
  let shard: ShardId | undefined;
  try {
    shard = shardArgumentOf(values);
  } catch (err) {
    return usage((err as Error).message);
  }
  let recipes: string[];
  if (values.recipes) {
    recipes = String(values.recipes).split(',').filter(Boolean);
  } else {
    try {
      recipes = systemRecipes(String(values.systems ?? DEFAULT_SYSTEMS.join(',')));
    } catch (err) {
      return usage((err as Error).message);
    }
  }
  const count = Number(values.seeds ?? (values.quick ? 1 : DEFAULT_SEEDS));
  if (!Number.isInteger(count) || count < 1) {
    return usage(`--seeds must be a positive integer; got ${values.seeds}`);
  }
  const overrides: string[] = values.quick ? [...QUICK] : [];
  const selective: Array<[string, string]> = [
    ['score', 'retraining.score'],
    ['rule', 'retraining.filters'],
    ['granularity', 'retraining.granularity'],
    ['tolerance', 'analysis.tolerance'],
    ['every', 'retraining.every'],
  ];
  for (const [option, field] of selective) {
    const value = values[option];
    if (value !== undefined) overrides.push(`${field}=${value}`);
  }
  overrides.push(...((values.set as string[] | undefined) ?? []));
  for (const file of recipes) {
    try {
      loadRecipe(file, overrides);
    } catch (err) {
      if (err instanceof RecipeError) {
        console.error(err.message);
        return 2;
      }
      throw err;
    }
  }
  const result = await reproduce({
    recipes,
    seeds: Array.from({ length: count }, (_, i) => i),
    overrides,
    outDir: values.out as string | undefined,
    experiment: values.experiment as string | undefined,
    shard,
    command: ['npm run reproduce', ...(argv.length ? ['--', ...argv] : [])].join(' '),
  });
  return result.status === 'finished' ? 0 : result.status === 'killed' ? 130 : 1;
}

if (require.main === module) {
  reproduceMain(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
