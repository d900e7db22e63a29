import * as fs from 'fs';
import * as path from 'path';
import { initBackend, type BackendId } from '../kernels/backend';
import { createProgress, type Progress } from './progress';
import { compareBranches, type Comparison } from './comparison';
import { EPOCH_CONVENTION } from './epochs';
import { checkRecipeData, disposeRecipeData, loadRecipeData, type RecipeData } from './data';
import { runPhase } from './phase';
import { planPhases, type PhasePlan } from './phases';
import { lockRunFolder, type RunLock } from './run-lock';
import { numericRow, RunContext, type EpochHooks } from './run-context';
import {
  RUN_FILES,
  RunFolder,
  type MetricRow,
  type RunManifest,
  type RunOutcome,
} from './run-folder';
import type { Recipe } from './schema';
import { startMlflowTracker, type RunTracker } from './tracking';

/** Options of {@link runRecipe}. */
export interface RunRecipeOptions extends EpochHooks {
  /** Parent folder of new run folders; default `runs`. */
  outDir?: string;
  /** Continue this run folder from its newest checkpoint instead of starting a new run. */
  resume?: string;
  /** Progress display; default `createProgress()` (bars on a terminal, plain lines otherwise). */
  progress?: Progress;
  /** tfjs backend; default: `initBackend()`'s choice. */
  backend?: BackendId;
  /** Write the run's report at the end with `reporter` (default true). */
  report?: boolean;
  /**
   * Writes the run's report (the CLI passes the report layer's `writeRunReport`); it is
   * uploaded to MLflow with the run's other files. Without it no report is written.
   */
  reporter?: RunReporter;
  /**
   * Nest this run's MLflow run under that MLflow run (its `mlflow.parentRunId`), as
   * `npm run reproduce` does with one run per system and seed.
   */
  mlflowParentRunId?: string;
}

/** Writes a report for a run folder and returns the report file's path. */
export type RunReporter = (runDir: string) => Promise<string>;

/** What {@link runRecipe} returns. */
export interface RunResult {
  /** The run folder. */
  dir: string;
  status: RunOutcome;
  rows: MetricRow[];
  comparison?: Comparison;
  /** MLflow run id of this invocation, when tracked. */
  mlflowRunId?: string;
  /** MLflow child run ids of the retraining branches, by phase (`normal-s0`, …), when tracked. */
  mlflowChildRuns?: Record<string, string>;
}

/**
 * A resumed run's new MLflow run gets the history so far, analyses included, and its branches
 * their child runs, so that it shows the whole run.
 */
async function replayHistory(
  tracker: RunTracker,
  ctx: RunContext,
  plans: readonly PhasePlan[],
): Promise<void> {
  for (const plan of plans) {
    const own = ctx.rows.filter((row) => row.phase === plan.id);
    if (own.length === 0) continue;
    await tracker.startPhase(plan);
    const epochs = new Set(own.map((row) => row.epoch));
    for (const report of ctx.folder.readAnalyses(plan.id)) {
      const epoch = report.epoch ?? 0;
      if (epoch === 0 || epochs.has(epoch)) tracker.logAnalysis(plan.id, report);
    }
    for (const row of own) await tracker.logEpoch(row.phase, row.epoch, numericRow(row));
    if (ctx.info.completedPhases.includes(plan.id)) await tracker.endPhase(plan.id, 'FINISHED');
  }
}

function newInfo(folder: RunFolder, recipe: Recipe): RunManifest {
  const now = new Date().toISOString();
  return {
    id: folder.id,
    recipe: recipe.name,
    status: 'running',
    epochs: EPOCH_CONVENTION,
    created: now,
    updated: now,
    completedPhases: [],
    mlflowRuns: [],
    invocations: [],
  };
}

const shown = (dir: string) => path.relative(process.cwd(), dir) || dir;

/** The run folder and manifest of one invocation. */
interface OpenRun {
  folder: RunFolder;
  /** Held from opening to the end of {@link runRecipe}. */
  lock: RunLock;
  info: RunManifest;
  invocation: RunManifest['invocations'][number];
}

/** What an invocation has set up so far, and how it ended (for {@link closeRun}). */
interface Session {
  status: RunOutcome;
  failure?: unknown;
  data?: RecipeData;
  tracker?: RunTracker;
}

/** Opens the run folder (a new one, or `options.resume`) and records this invocation in it. */
function openRun(recipe: Recipe, options: RunRecipeOptions, progress: Progress): OpenRun {
  const folder = options.resume
    ? RunFolder.open(options.resume)
    : RunFolder.create(options.outDir ?? 'runs', recipe.name);
  const lock = lockRunFolder(folder);
  try {
    return { folder, lock, ...recordInvocation(folder, recipe, options, progress) };
  } catch (err) {
    lock.release();
    throw err;
  }
}

function recordInvocation(
  folder: RunFolder,
  recipe: Recipe,
  options: RunRecipeOptions,
  progress: Progress,
): Omit<OpenRun, 'folder' | 'lock'> {
  let info: RunManifest;
  if (options.resume) {
    info = folder.readInfo();
    if (info.status === 'finished') {
      progress.log(`${folder.dir} has already finished; nothing to resume`);
    }
  } else {
    folder.writeJson(RUN_FILES.recipe, recipe);
    info = newInfo(folder, recipe);
  }
  const invocation: RunManifest['invocations'][number] = { started: new Date().toISOString() };
  info.invocations.push(invocation);
  info.status = 'running';
  delete info.error;
  folder.writeInfo(info);
  progress.log(`run folder: ${shown(folder.dir)}`);
  return { info, invocation };
}

/** Throws when the recipe's `model.inputShape` or `model.classes` contradict the dataset. */
function checkModelFits(recipe: Recipe, data: RecipeData): void {
  const { model: m } = recipe;
  if (m.inputShape && m.inputShape.join() !== data.inputShape.join()) {
    throw new Error(
      `/model/inputShape [${m.inputShape}] does not match the dataset's [${data.inputShape}]`,
    );
  }
  if (m.classes !== undefined && m.classes !== data.classes) {
    throw new Error(`/model/classes ${m.classes} does not match the dataset's ${data.classes}`);
  }
}

/** Runs the phases not completed yet, in order, until one stops early; returns the outcome. */
async function runPlans(ctx: RunContext, plans: readonly PhasePlan[]): Promise<RunOutcome> {
  const { info, folder } = ctx;
  for (const plan of plans) {
    if (info.completedPhases.includes(plan.id)) continue;
    if (ctx.hooks.signal?.aborted) break;
    const complete = await runPhase(ctx, plan);
    if (complete) info.completedPhases.push(plan.id);
    folder.writeInfo(info);
    if (!complete || ctx.stopRequested) break;
  }
  const status = plans.every((p) => info.completedPhases.includes(p.id)) ? 'finished' : 'killed';
  if (status === 'killed') {
    ctx.progress.log(
      `stopped; the run folder keeps everything up to the last finished epoch. ` +
        `Continue with: tfjs-antifragile run --resume ${shown(folder.dir)}`,
    );
  }
  return status;
}

/** Loads the data, starts tracking, runs the phases and compares the branches. */
async function executeRun(
  recipe: Recipe,
  { folder, info }: OpenRun,
  session: Session,
  options: RunRecipeOptions,
  progress: Progress,
): Promise<RunResult> {
  const data = await loadRecipeData(recipe);
  session.data = data;
  checkModelFits(recipe, data);
  const tracker = await startMlflowTracker({
    recipe,
    runDir: folder.dir,
    resumedFrom: info.mlflowRuns[info.mlflowRuns.length - 1],
    parentRunId: options.mlflowParentRunId,
    warn: (line) => progress.log(line),
  });
  session.tracker = tracker;
  const ctx = new RunContext(recipe, folder, info, data, progress, tracker, options);
  const plans = planPhases(recipe);
  if (tracker) {
    info.mlflowRuns.push(tracker.runId);
    info.mlflowChildRuns = tracker.childRuns;
    progress.log(`MLflow run ${tracker.runId}`);
    await replayHistory(tracker, ctx, plans);
  }
  folder.writeInfo(info);
  session.status = await runPlans(ctx, plans);
  const comparison = compareBranches(ctx.rows, info.completedPhases);
  if (comparison) {
    folder.writeJson(RUN_FILES.comparison, comparison);
    tracker?.logComparison(comparison);
  }
  return {
    dir: folder.dir,
    status: session.status,
    rows: ctx.rows,
    comparison,
    mlflowRunId: tracker?.runId,
    mlflowChildRuns: tracker ? { ...tracker.childRuns } : undefined,
  };
}

/** Writes the run's report (when asked) and uploads it to the tracker. */
async function writeReport(
  folder: RunFolder,
  options: RunRecipeOptions,
  progress: Progress,
  tracker: RunTracker | undefined,
): Promise<void> {
  if (!(options.report ?? true) || !options.reporter) return;
  try {
    const file = await options.reporter(folder.dir);
    progress.log(`report: ${shown(file)}`);
    tracker?.logArtifact(RUN_FILES.report, fs.readFileSync(file, 'utf8'), 'text/html');
  } catch (err) {
    progress.log(`report.html could not be written: ${(err as Error).message}`);
  }
}

/** The run folder's record files uploaded to the parent run (the report goes with writeReport). */
const UPLOADED_FILES: ReadonlyArray<[string, string]> = [
  [RUN_FILES.recipe, 'application/json'],
  [RUN_FILES.info, 'application/json'],
  [RUN_FILES.metricsCsv, 'text/csv'],
  [RUN_FILES.metricsJson, 'application/json'],
  [RUN_FILES.labels, 'application/json'],
  [RUN_FILES.labelsCsv, 'text/csv'],
  [RUN_FILES.frozen, 'application/json'],
];

function uploadRunFiles(folder: RunFolder, tracker: RunTracker): void {
  for (const [file, type] of UPLOADED_FILES) {
    if (folder.exists(file)) tracker.logArtifact(file, fs.readFileSync(folder.file(file)), type);
  }
}

/** Ends the invocation: records its outcome, writes the report, closes the MLflow run. */
async function closeRun(
  { folder, info, invocation }: OpenRun,
  session: Session,
  options: RunRecipeOptions,
  progress: Progress,
): Promise<void> {
  const { status, failure, tracker } = session;
  info.status = status;
  invocation.ended = new Date().toISOString();
  invocation.status = status;
  if (failure !== undefined) info.error = String((failure as Error).message ?? failure);
  try {
    folder.writeInfo(info);
  } catch (err) {
    // A full disk must not hide the run's own outcome; readers see the released lock.
    progress.log(`${RUN_FILES.info} could not record '${status}': ${(err as Error).message}`);
  }
  await writeReport(folder, options, progress, tracker);
  if (tracker) {
    // An id the server confirmed late (it was unreachable) replaces the local one.
    const last = info.mlflowRuns.length - 1;
    if (info.mlflowRuns[last]?.startsWith('local-')) info.mlflowRuns[last] = tracker.runId;
    folder.writeInfo(info);
    uploadRunFiles(folder, tracker);
    const mlflowStatus =
      status === 'finished' ? 'FINISHED' : status === 'killed' ? 'KILLED' : 'FAILED';
    await tracker.end(mlflowStatus, failure);
    // Ids confirmed while ending (the parent's, and the children's in info.mlflowChildRuns,
    // which is the tracker's own record) are written once more.
    if (info.mlflowRuns[last]?.startsWith('local-')) info.mlflowRuns[last] = tracker.runId;
    folder.writeInfo(info);
    if (tracker.url) progress.log(`MLflow run: ${tracker.url}`);
  }
  progress.close();
}

/**
 * Runs a validated recipe: trains, analyses at the chosen epochs, and (with `retraining`)
 * compares normal and selective retraining from the same checkpoint, writing everything to a
 * run folder (see {@link RunFolder}) and to MLflow when `MLFLOW_TRACKING_URI` is set. Each epoch
 * ends with a checkpoint, so an aborted run (`signal`) keeps everything up to its last finished
 * epoch, and `resume` continues it with the result an uninterrupted run would have had.
 */
export async function runRecipe(
  recipe: Recipe,
  options: RunRecipeOptions = {},
): Promise<RunResult> {
  // A missing dataset is found before a run folder is made for it.
  checkRecipeData(recipe);
  const progress = options.progress ?? createProgress();
  const run = openRun(recipe, options, progress);
  const session: Session = { status: 'failed' };
  try {
    const backend = await initBackend({
      backend: options.backend,
      log: (m) => progress.log(m),
    });
    run.info.backend = backend.id;
    return await executeRun(recipe, run, session, options, progress);
  } catch (err) {
    session.status = 'failed';
    session.failure = err;
    throw err;
  } finally {
    if (session.data) disposeRecipeData(session.data);
    try {
      await closeRun(run, session, options, progress);
    } finally {
      run.lock.release();
    }
  }
}
