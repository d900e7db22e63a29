import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { AnalysisReport } from '../analysis/types';
import {
  analysisCsv,
  analysisMetrics,
  MlflowClient,
  MlflowRun,
  sanitizeKey,
  type ParamValue,
  type RunStatus,
} from '../mlflow';
import type { Recipe } from './schema';

/**
 * Where a run reports besides its folder. The runner calls these in order; none of them throws
 * for the network (the MLflow run spools what the server did not take).
 */
export interface RunTracker {
  /** The tracking system's id of the run. */
  readonly runId: string;
  /** Metrics of one epoch of one phase: keys become `<phase>/<key>`, step = the epoch. */
  logEpoch(phase: string, epoch: number, metrics: Record<string, number>): Promise<void>;
  /** An analysis report: its scores and label counts as metrics, and JSON + CSV artifacts. */
  logAnalysis(phase: string, report: AnalysisReport): void;
  /** A file of the run folder, uploaded under the same relative path. */
  logArtifact(relative: string, data: string | Uint8Array, contentType: string): void;
  /** Ends the run with a status (FINISHED, KILLED, FAILED), waiting a little for the server. */
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

/** Options of {@link startMlflowTracker}. */
export interface MlflowTrackerOptions {
  recipe: Recipe;
  /** The run folder (its id becomes the MLflow run name; the spool goes inside it). */
  runDir: string;
  /** The MLflow run this invocation continues, when resuming. */
  resumedFrom?: string;
  /** Where warnings go. */
  warn: (message: string) => void;
}

/**
 * Starts an MLflow run for a recipe run when `MLFLOW_TRACKING_URI` is set and the recipe does not
 * turn tracking off; returns undefined otherwise, or when the server cannot be reached at the
 * start (then a warning says so and the run goes on with its folder only).
 */
export async function startMlflowTracker(
  options: MlflowTrackerOptions,
): Promise<RunTracker | undefined> {
  const settings = options.recipe.tracking.mlflow;
  if (!settings.enabled || !process.env.MLFLOW_TRACKING_URI) return undefined;
  const runName = path.basename(options.runDir);
  let run: MlflowRun;
  try {
    const client = new MlflowClient({ experimentName: settings.experimentName });
    run = await MlflowRun.start(client, {
      experimentName: settings.experimentName,
      runName,
      params: recipeParams(options.recipe),
      tags: {
        'mlflow.source.name': 'tfjs-antifragile run',
        'mlflow.source.type': 'LOCAL',
        'tfjs.backend': tf.getBackend(),
        'tfjs.version': tf.version.tfjs,
        'tfjs_antifragile.recipe': options.recipe.name,
        'tfjs_antifragile.run_dir': options.runDir,
        ...(options.resumedFrom ? { 'tfjs_antifragile.resumed_from': options.resumedFrom } : {}),
        ...settings.tags,
      },
      localDir: path.join(options.runDir, 'mlflow', new Date().toISOString().replace(/[:.]/g, '-')),
    });
  } catch (err) {
    options.warn(
      `MLflow: could not start a run at ${process.env.MLFLOW_TRACKING_URI} (${(err as Error).message}); ` +
        'the run goes on and writes its folder only',
    );
    return undefined;
  }
  const report = async (context: string, result: { errors: Error[] }) => {
    if (result.errors.length) options.warn(`MLflow (${context}): ${result.errors[0].message}`);
  };
  return {
    runId: run.runId,
    async logEpoch(phase, epoch, metrics) {
      const values: Record<string, number> = {};
      for (const [key, value] of Object.entries(metrics)) {
        values[sanitizeKey(`${phase}/${key}`)] = value;
      }
      run.logMetrics(values, epoch);
      await report(`${phase} epoch ${epoch}`, await run.flush());
    },
    logAnalysis(phase, analysis) {
      const epoch = analysis.epoch ?? 0;
      const metrics: Record<string, number> = {};
      for (const [key, value] of Object.entries(analysisMetrics(analysis))) {
        metrics[sanitizeKey(`${phase}/${key}`)] = value;
      }
      run.logMetrics(metrics, Math.max(epoch, 0));
      const name = `analysis/${phase}/${epoch < 0 ? 'start' : `epoch-${String(epoch).padStart(3, '0')}`}`;
      run.logArtifact(`${name}.json`, JSON.stringify(analysis), 'application/json');
      run.logArtifact(`${name}.csv`, analysisCsv(analysis), 'text/csv');
    },
    logArtifact(relative, data, contentType) {
      run.logArtifact(relative.split(path.sep).join('/'), data, contentType);
    },
    async end(status, error) {
      if (error !== undefined) {
        const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        run.setTags({ 'tfjs_antifragile.error': text.slice(0, 5000) });
      }
      const result = await run.end(status, { timeoutMs: 15_000 });
      await report(`ending the run ${status}`, result);
      if (result.pending > 0) {
        options.warn(
          `MLflow: ${result.pending} operation(s) did not reach the server; they wait in ${result.spoolPath ?? 'memory'}`,
        );
      }
    },
  };
}
