/**
 * MLflow logging of an analysis-only run (`tfjs-antifragile analyze`): params (the inputs and
 * `analysis.<option>`), the `psi_*` and label-count metrics, the report files and the model
 * itself as artifacts. Used when MLFLOW_TRACKING_URI is set; logging never fails the run.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { AnalysisReport } from '../analysis/types';
import { analysisMetrics, analysisParams } from '../../callbacks/mlflow-records';
import { MlflowClient, MlflowRun, type RunStatus } from '../mlflow';

/** What {@link logAnalysisRun} sends. */
export interface AnalysisRunRecord {
  /** The run folder (its name becomes the MLflow run name; the spool goes inside it). */
  runDir: string;
  report?: AnalysisReport;
  /** Inputs as params (`model`, `data`, …). */
  inputs: Record<string, string>;
  /** Files of the run folder to upload, relative to it. */
  files: string[];
  /** Model files to upload under `model/`. */
  modelFiles: string[];
  status: RunStatus;
  experimentName?: string;
  warn: (message: string) => void;
}

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.csv': 'text/csv',
  '.html': 'text/html',
};

/** Logs one analysis run to MLflow; returns its run id, or undefined when it could not. */
export async function logAnalysisRun(record: AnalysisRunRecord): Promise<string | undefined> {
  if (!process.env.MLFLOW_TRACKING_URI) return undefined;
  const experimentName = record.experimentName ?? 'tfjs-antifragile';
  let run: MlflowRun;
  try {
    const client = new MlflowClient({ experimentName });
    run = await MlflowRun.start(client, {
      experimentName,
      runName: path.basename(record.runDir),
      params: { ...record.inputs, ...(record.report ? analysisParams(record.report) : {}) },
      tags: {
        'mlflow.source.name': 'tfjs-antifragile analyze',
        'mlflow.source.type': 'LOCAL',
        'tfjs.backend': tf.getBackend(),
        'tfjs.version': tf.version.tfjs,
        'tfjs_antifragile.run_dir': record.runDir,
      },
      localDir: path.join(record.runDir, 'mlflow'),
    });
  } catch (err) {
    record.warn(
      `MLflow: could not start a run at ${process.env.MLFLOW_TRACKING_URI} (${(err as Error).message}); the run folder has everything`,
    );
    return undefined;
  }
  if (record.report) run.logMetrics(analysisMetrics(record.report), 0);
  for (const file of record.files) {
    const full = path.join(record.runDir, file);
    if (!fs.existsSync(full)) continue;
    run.logArtifact(file, new Uint8Array(fs.readFileSync(full)), CONTENT_TYPES[path.extname(file)]);
  }
  for (const file of record.modelFiles) {
    run.logArtifact(`model/${path.basename(file)}`, new Uint8Array(fs.readFileSync(file)));
  }
  const result = await run.end(record.status, { timeoutMs: 30_000 });
  if (result.errors.length) record.warn(`MLflow: ${result.errors[0].message}`);
  if (result.pending > 0) {
    record.warn(`MLflow: ${result.pending} operation(s) wait in ${result.spoolPath ?? 'memory'}`);
  }
  return run.runId;
}
