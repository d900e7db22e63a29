import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { AnalysisReport } from '../analysis/types';
import { analysisCsv, analysisMetrics } from '../../callbacks/mlflow-records';
import { modelArtifacts } from '../../callbacks/mlflow-model';
import {
  findSpools,
  MLFLOW_ENV,
  MlflowClient,
  MlflowRun,
  NOTE_TAG,
  sanitizeKey,
  type ParamValue,
  type RunStatus,
} from '../mlflow';
import { gainMetrics, type Comparison } from './comparison';
import type { PhasePlan } from './phases';
import type { Recipe } from './schema';

/**
 * Where a run reports besides its folder. The runner calls these in order; none of them throws
 * for the network (an MLflow run spools what the server did not take).
 *
 * In MLflow a recipe run is one parent run (params: the recipe; metrics: every phase's, as
 * `<phase>/<key>`; the comparison as `comparison/…`; the run folder's files) with one child run
 * per retraining arm and seed (`normal-s<seed>`, `selective-s<seed>`: params `arm` and `seed`,
 * that branch's metrics under their own names, its analyses), so MLflow's run table compares the
 * arms directly.
 */
export interface RunTracker {
  /**
   * The tracking system's id of the (parent) run; for MLflow, a local id (`local-…`, the run's
   * tag `tfjs_antifragile.local_id`) until the server has confirmed the run's creation.
   */
  readonly runId: string;
  /** The child run id of each branch phase started so far, by phase id (local ids likewise). */
  readonly childRuns: Readonly<Record<string, string>>;
  /**
   * Opens the child run of a retraining branch (`normal` or `selective` phase); the training phase
   * has none. Idempotent for a phase already open.
   */
  startPhase(plan: Pick<PhasePlan, 'id' | 'kind' | 'seed'>): Promise<void>;
  /** Metrics of one epoch of one phase: keys become `<phase>/<key>`, step = the epoch. */
  logEpoch(phase: string, epoch: number, metrics: Record<string, number>): Promise<void>;
  /** An analysis report: its scores and label counts as metrics, and JSON + CSV artifacts. */
  logAnalysis(phase: string, report: AnalysisReport): void;
  /**
   * A phase's final model (`model/`: tfjs layers format and an `MLmodel` file with its
   * signature): a branch's goes to its child run, the training phase's to the parent run.
   */
  logModel(phase: string, model: tf.LayersModel): Promise<void>;
  /** The MLflow UI's page of the (parent) run, once the server knows the run. */
  readonly url: string | undefined;
  /** Ends a branch's child run (FINISHED when the branch completed). */
  endPhase(phase: string, status: RunStatus): Promise<void>;
  /** The normal-vs-selective comparison, as parent metrics and `comparison.json`. */
  logComparison(comparison: Comparison): void;
  /** A file of the run folder, uploaded under the same relative path. */
  logArtifact(relative: string, data: string | Uint8Array, contentType: string): void;
  /**
   * Ends the run with a status (FINISHED, KILLED, FAILED), waiting a little for the server; child
   * runs still open end with the same status.
   */
  end(status: RunStatus, error?: unknown): Promise<void>;
}

/** Flattens a recipe into MLflow params: `model.architecture`, `training.epochs`, … */
export function recipeParams(recipe: Recipe): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  const visit = (prefix: string, value: unknown) => {
    if (value === undefined || value === null) return;
    if (typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) visit(prefix ? `${prefix}.${k}` : k, v);
    } else if (Array.isArray(value)) {
      out[prefix] = JSON.stringify(value);
    } else if (
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean'
    ) {
      out[prefix] = value;
    }
  };
  const { $schema: _schema, description: _description, tracking: _tracking, ...rest } = recipe;
  visit('', rest);
  return out;
}

/** The experiment recipe runs go to when neither the recipe nor the environment names one. */
export const DEFAULT_RECIPE_EXPERIMENT = 'tfjs-antifragile';

/**
 * The experiment of a recipe run, by MLflow's precedence: the recipe's
 * `tracking.mlflow.experimentName`, else `MLFLOW_EXPERIMENT_NAME`, else
 * {@link DEFAULT_RECIPE_EXPERIMENT}.
 */
export function recipeExperimentName(recipe: Recipe, env = process.env): string {
  return (
    recipe.tracking.mlflow.experimentName ||
    env[MLFLOW_ENV.experimentName] ||
    DEFAULT_RECIPE_EXPERIMENT
  );
}

/** The run description (`mlflow.note.content`, Markdown) of a recipe run's parent run. */
export function parentNote(recipe: Recipe, runName: string): string {
  const arms = recipe.retraining.enabled
    ? `then retrains from the trained model with the arms ${recipe.retraining.arms
        .map((a) => `\`${a}\``)
        .join(', ')} for the seeds ${recipe.retraining.seeds.join(', ')} ` +
      '(one child run per arm and seed; the comparison is under `comparison/`)'
    : 'without retraining';
  return [
    `tfjs-antifragile recipe run \`${runName}\` of the recipe **${recipe.name}**: trains ` +
      `\`${recipe.model.architecture}\` on \`${recipe.dataset.name}\` for ` +
      `${recipe.training.epochs} epoch(s), ${arms}.`,
    ...(recipe.description ? ['', recipe.description] : []),
  ].join('\n');
}

/** The run description of one branch's child run. */
export function childNote(recipe: Recipe, runName: string, arm: string, seed: number): string {
  return (
    `Retraining arm \`${arm}\`, seed ${seed}, of the recipe run \`${runName}\` ` +
    `(recipe **${recipe.name}**): ${recipe.retraining.epochs} epoch(s) from the trained model; ` +
    'its final model is under `model/`.'
  );
}

/** Options of {@link startMlflowTracker}. */
export interface MlflowTrackerOptions {
  recipe: Recipe;
  /** The run folder (its id becomes the MLflow run name; the spool goes inside it). */
  runDir: string;
  /** The MLflow run this invocation continues, when resuming. */
  resumedFrom?: string;
  /** An MLflow run to nest this one under (its `mlflow.parentRunId`), e.g. a sweep's run. */
  parentRunId?: string;
  /** Where warnings go. */
  warn: (message: string) => void;
}

/** Record fields that are MLflow steps or params, never metrics. */
const NOT_METRICS = new Set(['epoch', 'seed']);

/** How long an epoch end waits for MLflow before training goes on (the rest is sent later). */
const EPOCH_WAIT_MS = 1000;
/** How long the end of a run waits for MLflow, in ms (what is left stays spooled). */
const END_WAIT_MS = 15_000;

/**
 * Starts an MLflow run for a recipe run when `MLFLOW_TRACKING_URI` is set and the recipe does not
 * turn tracking off; returns undefined otherwise, or when the configuration is unusable or the
 * server refuses the run (a warning says why). A server that is down, hung, failing or
 * rate-limiting does not stop tracking: the run's operations, its creation and its child runs'
 * included, are spooled under `<runDir>/mlflow/` and sent when it answers, and what a run left
 * behind (a crash, an outage at its end) is sent, and its runs ended, by the next invocation
 * (`--resume`) or `tfjs-antifragile sync <runDir>`.
 */
export async function startMlflowTracker(
  options: MlflowTrackerOptions,
): Promise<RunTracker | undefined> {
  const settings = options.recipe.tracking.mlflow;
  if (!settings.enabled || !process.env.MLFLOW_TRACKING_URI) return undefined;
  const experimentName = recipeExperimentName(options.recipe);
  const runName = path.basename(options.runDir);
  const mlflowDir = path.join(options.runDir, 'mlflow');
  const localRoot = path.join(mlflowDir, new Date().toISOString().replace(/[:.]/g, '-'));
  const params = recipeParams(options.recipe);
  const commonTags: Record<string, string> = {
    'mlflow.source.name': 'tfjs-antifragile run',
    'mlflow.source.type': 'LOCAL',
    'tfjs.backend': tf.getBackend(),
    'tfjs.version': tf.version.tfjs,
    'tfjs_antifragile.recipe': options.recipe.name,
    'tfjs_antifragile.run_dir': options.runDir,
    ...settings.tags,
  };
  const onStatus = (line: string) => options.warn(line);
  let client: MlflowClient;
  let run: MlflowRun;
  let leftovers: MlflowRun[];
  try {
    client = new MlflowClient({ experimentName });
    leftovers = takeUpLeftovers(client, mlflowDir, options.warn);
    run = await MlflowRun.start(client, {
      experimentName,
      runName,
      params,
      tags: {
        ...commonTags,
        [NOTE_TAG]: parentNote(options.recipe, runName),
        ...(options.resumedFrom ? { 'tfjs_antifragile.resumed_from': options.resumedFrom } : {}),
        ...(options.parentRunId ? { 'mlflow.parentRunId': options.parentRunId } : {}),
      },
      localDir: localRoot,
      onStatus,
    });
  } catch (err) {
    options.warn(
      `MLflow: could not start a run (${(err as Error).message}); ` +
        'the run goes on and writes its folder only',
    );
    return undefined;
  }
  const report = (context: string, result: { errors: Error[] }) => {
    if (result.errors.length) options.warn(`MLflow (${context}): ${result.errors[0].message}`);
  };
  const children = new Map<string, MlflowRun>();
  const childRuns: Record<string, string> = {};
  // Ids are local until the server confirms a creation; the record follows.
  const refreshIds = () => {
    for (const [phase, child] of children) childRuns[phase] = child.runId;
  };
  const endRun = async (target: MlflowRun, status: RunStatus, context: string) => {
    const result = target.ended
      ? await target.flush({ force: true, timeoutMs: END_WAIT_MS })
      : await target.end(status, { timeoutMs: END_WAIT_MS });
    report(context, result);
    return result.pending;
  };
  const prefixed = (phase: string, values: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const [key, value] of Object.entries(values)) out[sanitizeKey(`${phase}/${key}`)] = value;
    return out;
  };
  const analysisName = (epoch: number) =>
    epoch <= 0 ? 'start' : `epoch-${String(epoch).padStart(3, '0')}`;
  for (const old of leftovers) void old.flush({ waitMs: 0 });
  /** Metrics of a record, less what is a step or a param (`epoch`, `seed`). */
  const ownMetrics = (values: Record<string, number>) => {
    const own: Record<string, number> = {};
    for (const [key, value] of Object.entries(values)) {
      if (!NOT_METRICS.has(key)) own[sanitizeKey(key)] = value;
    }
    return own;
  };

  return {
    get runId() {
      return run.runId;
    },
    childRuns,
    async startPhase(plan) {
      if (plan.kind === 'train' || children.has(plan.id)) return;
      try {
        const child = await MlflowRun.start(client, {
          experimentName,
          runName: `${runName}/${plan.id}`,
          params: { ...params, arm: plan.kind, seed: plan.seed, phase: plan.id },
          tags: {
            ...commonTags,
            [NOTE_TAG]: childNote(options.recipe, runName, plan.kind, plan.seed),
            'tfjs_antifragile.phase': plan.id,
            'tfjs_antifragile.arm': plan.kind,
            'tfjs_antifragile.seed': String(plan.seed),
          },
          parent: run,
          localDir: path.join(localRoot, plan.id),
          onStatus,
        });
        children.set(plan.id, child);
        refreshIds();
      } catch (err) {
        options.warn(
          `MLflow: could not start the child run of ${plan.id} (${(err as Error).message}); ` +
            'its metrics go to the parent run only',
        );
      }
    },
    get url() {
      const info = run.info;
      return info ? client.runUrl(info.experimentId, info.runId) : undefined;
    },
    async logEpoch(phase, epoch, metrics) {
      const own = ownMetrics(metrics);
      run.logMetrics(prefixed(phase, own), epoch);
      const child = children.get(phase);
      const flushes = [run.flush({ waitMs: EPOCH_WAIT_MS })];
      if (child) {
        child.logMetrics(own, epoch);
        flushes.push(child.flush({ waitMs: EPOCH_WAIT_MS }));
      }
      for (const result of await Promise.all(flushes)) report(`${phase} epoch ${epoch}`, result);
      refreshIds();
    },
    logAnalysis(phase, analysis) {
      const epoch = analysis.epoch ?? 0;
      const metrics = analysisMetrics(analysis);
      run.logMetrics(prefixed(phase, metrics), Math.max(epoch, 0));
      const json = JSON.stringify(analysis);
      const csv = analysisCsv(analysis);
      const name = `analysis/${phase}/${analysisName(epoch)}`;
      run.logArtifact(`${name}.json`, json, 'application/json');
      run.logArtifact(`${name}.csv`, csv, 'text/csv');
      const child = children.get(phase);
      if (child) {
        child.logMetrics(ownMetrics(metrics), Math.max(epoch, 0));
        child.logArtifact(`analysis/${analysisName(epoch)}.json`, json, 'application/json');
        child.logArtifact(`analysis/${analysisName(epoch)}.csv`, csv, 'text/csv');
      }
    },
    async logModel(phase, model) {
      const target = children.get(phase) ?? run;
      const prefix = target === run && children.size > 0 ? `models/${phase}` : 'model';
      for (const file of await modelArtifacts(model, prefix)) {
        target.logArtifact(file.path, file.data, file.contentType);
      }
    },
    async endPhase(phase, status) {
      const child = children.get(phase);
      if (!child || child.ended) return;
      // The run goes on: end the branch's child in the background (it stays spooled meanwhile).
      child.end(status, { timeoutMs: 0 }).then(
        (result) => report(`ending ${phase} ${status}`, result),
        () => undefined,
      );
      await child.flush({ waitMs: EPOCH_WAIT_MS });
      refreshIds();
    },
    logComparison(comparison) {
      const values: Record<string, number> = {};
      for (const [arm, means] of Object.entries(comparison.mean)) {
        for (const [metric, value] of Object.entries(means)) {
          if (typeof value === 'number') values[`comparison/${arm}_${metric}`] = value;
        }
      }
      for (const [metric, value] of Object.entries(comparison.gain)) {
        if (typeof value === 'number') values[`comparison/gain_${metric}`] = value;
      }
      Object.assign(values, gainMetrics(comparison.gains ?? {}, 'comparison'));
      run.logMetrics(values, 0);
      run.logParams({ 'comparison.seeds': JSON.stringify(comparison.seeds.map((s) => s.seed)) });
      run.logArtifact('comparison.json', JSON.stringify(comparison, null, 2), 'application/json');
    },
    logArtifact(relative, data, contentType) {
      run.logArtifact(relative.split(path.sep).join('/'), data, contentType);
    },
    async end(status, error) {
      if (error !== undefined) {
        const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        run.setTags({ 'tfjs_antifragile.error': text.slice(0, 5000) });
      }
      // All at once, so that a server that does not answer costs the wait once.
      const pending = await Promise.all([
        ...[...children].map(([phase, child]) =>
          endRun(child, status, `ending ${phase} ${status}`),
        ),
        ...leftovers.map((old) => endRun(old, 'KILLED', `finishing ${old.runId}`)),
        endRun(run, status, `ending the run ${status}`),
      ]);
      refreshIds();
      const total = pending.reduce((a, b) => a + b, 0);
      if (total > 0) {
        options.warn(
          `MLflow: ${total} operation(s) did not reach the server; they wait in the spools under ` +
            `${mlflowDir}. Send them with: tfjs-antifragile sync ${options.runDir} ` +
            '(or they go with the next --resume)',
        );
      }
    },
  };
}

/**
 * Spools an earlier invocation of this run left behind (it crashed, or the server was down at
 * its end): taken up so that their runs are sent and ended (KILLED if never ended).
 */
function takeUpLeftovers(
  client: MlflowClient,
  mlflowDir: string,
  warn: (message: string) => void,
): MlflowRun[] {
  const runs: MlflowRun[] = [];
  for (const file of findSpools(mlflowDir)) {
    try {
      const old = MlflowRun.resume(client, file, { onStatus: warn });
      if (!old.ended) void old.end('KILLED', { timeoutMs: 0 });
      runs.push(old);
    } catch (err) {
      warn(`MLflow: left ${file} alone: ${(err as Error).message}`);
    }
  }
  if (runs.length > 0) {
    warn(
      `MLflow: ${runs.length} run(s) left behind by an earlier invocation are sent and ended now`,
    );
  }
  return runs;
}
