/**
 * Reads an experiment back with MLflow's own Python client (from the project's .venv): every run,
 * deleted ones included, with its status, tags, params, full metric histories and artifact list.
 * Tests compare this, not our client's view, with what was logged.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const PYTHON = path.join(__dirname, '..', '..', '.venv', 'bin', 'python');

const SCRIPT = `
import json, math, re, sys
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
wanted = re.compile(sys.argv[3])
exp = client.get_experiment_by_name(sys.argv[2])
runs = [] if exp is None else client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
def num(v):
    return None if isinstance(v, float) and math.isnan(v) else v
out = []
for r in runs:
    out.append(dict(
        runId=r.info.run_id,
        runName=r.info.run_name,
        status=r.info.status,
        lifecycleStage=r.info.lifecycle_stage,
        tags=r.data.tags,
        params=r.data.params,
        metrics={k: [[m.step, num(m.value), m.timestamp] for m in client.get_metric_history(r.info.run_id, k)] for k in r.data.metrics if wanted.search(k)},
        artifacts=sorted(f.path for f in client.list_artifacts(r.info.run_id)),
    ))
print(json.dumps(out))
`;

/** A run as MLflow's Python client reads it. */
export interface ReadBackRun {
  runId: string;
  runName: string;
  status: string;
  lifecycleStage: string;
  tags: Record<string, string>;
  params: Record<string, string>;
  /** Per key, every logged point as [step, value (null for NaN), timestamp], in MLflow's order. */
  metrics: Record<string, [number, number | null, number][]>;
  /** Top-level artifact paths. */
  artifacts: string[];
}

/**
 * Every run of `experiment` on the server at `trackingUri`, read with MLflow's Python client;
 * the histories of the metrics whose keys match `keys` (default: all).
 */
export function readBack(trackingUri: string, experiment: string, keys = /./): ReadBackRun[] {
  const r = spawnSync(PYTHON, ['-c', SCRIPT, trackingUri, experiment, keys.source], {
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, MLFLOW_TRACKING_URI: trackingUri },
  });
  if (r.status !== 0) {
    const why = r.error?.message ?? `exit ${r.status ?? r.signal}`;
    throw new Error(`reading back with MLflow's Python client failed (${why}):\n${r.stderr}`);
  }
  return JSON.parse(r.stdout) as ReadBackRun[];
}

/** Steps of a metric history, in order, sorted: duplicates show as repeated steps. */
export function steps(run: ReadBackRun, key: string): number[] {
  return (run.metrics[key] ?? []).map(([step]) => step).sort((a, b) => a - b);
}
