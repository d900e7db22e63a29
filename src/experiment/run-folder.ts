import * as fs from 'fs';
import * as path from 'path';
import type { AnalysisReport, FilterId, ScoreId } from '../analysis/types';
import { analysisCsv } from '../../callbacks/mlflow-records';
import { killPoint } from './kill-points';
import type { Recipe } from './schema';
import { planPhases } from './phases';
import { labelGrid, type LabelGrid } from './label-grid';

export { labelGrid, type LabelGrid } from './label-grid';

/** Status of a run, as `run.json` records it. */
export type RunOutcome = 'running' | 'finished' | 'killed' | 'failed';

/** One row of `metrics.json` / `metrics.csv`: one epoch of one phase. */
export interface MetricRow {
  /** `train`, `normal-s<seed>` or `selective-s<seed>`. */
  phase: string;
  /** Epoch within the phase, 0-based. */
  epoch: number;
  [metric: string]: number | string;
}

/** One entry of `frozen.json`: the layers frozen after an epoch of a selective phase. */
export interface FrozenRecord {
  phase: string;
  epoch: number;
  layers: string[];
  /**
   * The model's parameters (`countParams()`, every weight element) in the frozen layers and in
   * the whole model, so that the report can show the fraction of weights frozen. Absent in runs
   * recorded before it was added.
   */
  weights?: { frozen: number; total: number };
}

/** What `run.json` holds. */
export interface RunManifest {
  id: string;
  recipe: string;
  status: RunOutcome;
  created: string;
  updated: string;
  /** The tfjs backend of the latest invocation. */
  backend?: string;
  /** Phases finished, in order. */
  completedPhases: string[];
  /** How every `epoch` of the run's records counts (`EPOCH_CONVENTION`: epochs finished). */
  epochs?: string;
  /** The newest checkpoint: phase, epoch and folder (relative to the run folder). */
  checkpoint?: { phase: string; epoch: number; dir: string };
  /** Set on a fork (`forkRun`): the run whose completed phases this one started with. */
  forkedFrom?: { run: string; phases: string[] };
  /** MLflow run ids of each invocation (a resumed run gets a new MLflow run). */
  mlflowRuns: string[];
  /** MLflow child run ids of the retraining branches (of the newest MLflow run), by phase. */
  mlflowChildRuns?: Record<string, string>;
  /** Invocations: when each started and how it ended. */
  invocations: Array<{ started: string; ended?: string; status?: RunOutcome }>;
  error?: string;
}

/**
 * Parses a JSON file; a file that cannot be read or parsed (truncated, corrupt) is an error
 * naming the file, what it should hold and what is wrong.
 */
export function readJsonFile<T>(file: string, expected: string): T {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(
      `${file} is not valid JSON (${(err as Error).message}; ${text.length} characters); ` +
        `expected ${expected}. The file is truncated or corrupt`,
    );
  }
}

/** A file-name-safe UTC timestamp, `20261203-112624`: what run and output folders are named by. */
export function timestamp(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

/** The file layout of a run folder. */
export const RUN_FILES = {
  recipe: 'recipe.json',
  info: 'run.json',
  lock: 'run.lock',
  metricsJson: 'metrics.json',
  metricsCsv: 'metrics.csv',
  labels: 'labels.json',
  labelsCsv: 'labels.csv',
  frozen: 'frozen.json',
  comparison: 'comparison.json',
  report: 'report.html',
  analysis: 'analysis',
  checkpoints: 'checkpoints',
} as const;

function csvField(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Rows as CSV, the columns being the union of the rows' keys (phase and epoch first). */
export function rowsToCsv(rows: ReadonlyArray<Record<string, unknown>>): string {
  const columns: string[] = [];
  for (const row of rows)
    for (const key of Object.keys(row)) {
      if (!columns.includes(key)) columns.push(key);
    }
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c])).join(','));
  return lines.join('\n') + '\n';
}

/**
 * A run folder, `runs/<run-id>/`: the resolved recipe, `run.json` (status and newest
 * checkpoint), metrics per epoch (`metrics.json`, `metrics.csv`), every analysis report
 * (`analysis/<phase>/epoch-NNN.json` and `.csv`), the label grids (`labels.json`, `labels.csv`),
 * the frozen layers (`frozen.json`), the comparison (`comparison.json`), checkpoints
 * (`checkpoints/<phase>/epoch-NNN/`) and `report.html`.
 */
export class RunFolder {
  constructor(
    /** Absolute path of the folder. */
    readonly dir: string,
  ) {}

  /** Creates `<outDir>/<name>-<timestamp>` (a suffix is added if it exists). */
  static create(outDir: string, name: string, now = new Date()): RunFolder {
    const stamp = timestamp(now);
    let id = `${name}-${stamp}`;
    for (let i = 2; fs.existsSync(path.join(outDir, id)); i++) id = `${name}-${stamp}-${i}`;
    const dir = path.resolve(outDir, id);
    fs.mkdirSync(dir, { recursive: true });
    return new RunFolder(dir);
  }

  /** Opens an existing run folder (it must hold `run.json` and `recipe.json`). */
  static open(dir: string): RunFolder {
    const folder = new RunFolder(path.resolve(dir));
    for (const file of [RUN_FILES.info, RUN_FILES.recipe]) {
      if (!fs.existsSync(folder.file(file))) {
        throw new Error(`${dir} is not a run folder: ${file} is missing`);
      }
    }
    return folder;
  }

  get id(): string {
    return path.basename(this.dir);
  }

  file(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /** Writes a file atomically (temporary file, then rename). */
  write(relative: string, data: string | Uint8Array): void {
    const target = this.file(relative);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const tmp = `${target}.tmp`;
    killPoint(`${relative}: about to write`);
    fs.writeFileSync(tmp, data);
    killPoint(`${relative}: temporary file written`);
    fs.renameSync(tmp, target);
  }

  writeJson(relative: string, data: unknown): void {
    this.write(relative, JSON.stringify(data, null, 2) + '\n');
  }

  /** Reads a JSON file of the folder; a corrupt one is an error naming the file. */
  readJson<T>(relative: string): T {
    return readJsonFile<T>(this.file(relative), `a ${relative} file of a run folder`);
  }

  exists(relative: string): boolean {
    return fs.existsSync(this.file(relative));
  }

  readRecipe(): Recipe {
    return this.readJson<Recipe>(RUN_FILES.recipe);
  }

  readInfo(): RunManifest {
    return this.readJson<RunManifest>(RUN_FILES.info);
  }

  writeInfo(info: RunManifest): void {
    this.writeJson(RUN_FILES.info, { ...info, updated: new Date().toISOString() });
  }

  writeMetrics(rows: readonly MetricRow[]): void {
    this.writeJson(RUN_FILES.metricsJson, rows);
    this.write(RUN_FILES.metricsCsv, rowsToCsv(rows));
  }

  readMetrics(): MetricRow[] {
    return this.exists(RUN_FILES.metricsJson)
      ? this.readJson<MetricRow[]>(RUN_FILES.metricsJson)
      : [];
  }

  /** Relative path of a report's file (without extension). */
  static analysisName(phase: string, epoch: number): string {
    const e = epoch <= 0 ? 'start' : `epoch-${String(epoch).padStart(3, '0')}`;
    return path.join(RUN_FILES.analysis, phase, e);
  }

  writeAnalysis(phase: string, report: AnalysisReport): void {
    const name = RunFolder.analysisName(phase, report.epoch ?? 0);
    this.writeJson(`${name}.json`, report);
    this.write(`${name}.csv`, analysisCsv(report));
  }

  /** Every stored report of `phase`, in epoch order (`start` first). */
  readAnalyses(phase: string): AnalysisReport[] {
    const dir = this.file(RUN_FILES.analysis, phase);
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => readJsonFile<AnalysisReport>(path.join(dir, f), 'an analysis report'))
      .sort((a, b) => (a.epoch ?? 0) - (b.epoch ?? 0));
  }

  /** Phases with stored reports. */
  analysedPhases(): string[] {
    const dir = this.file(RUN_FILES.analysis);
    if (!fs.existsSync(dir)) return [];
    // In the order the phases run (train, then each seed's arms), as the report shows them.
    const order = this.exists(RUN_FILES.recipe)
      ? planPhases(this.readRecipe()).map((p) => p.id)
      : [];
    const rank = (phase: string) => (order.includes(phase) ? order.indexOf(phase) : order.length);
    return fs
      .readdirSync(dir)
      .sort()
      .sort((a, b) => rank(a) - rank(b));
  }

  /** Rewrites `labels.json` and `labels.csv` from the stored reports of every phase. */
  writeLabels(phases: readonly string[]): LabelGrid[] {
    const grids = phases
      .map((phase) => labelGrid(phase, this.readAnalyses(phase)))
      .filter((g) => g.epochs.length > 0);
    this.writeJson(RUN_FILES.labels, grids);
    const rows: Array<Record<string, unknown>> = [];
    for (const grid of grids) {
      for (const [filter, byScore] of Object.entries(grid.labels)) {
        for (const [score, labels] of Object.entries(byScore)) {
          grid.parameters.forEach((parameter, i) =>
            grid.epochs.forEach((epoch, j) =>
              rows.push({
                phase: grid.phase,
                parameter,
                filter,
                score,
                epoch,
                label: labels[i][j],
                psi: grid.scores[filter as FilterId]?.[score as ScoreId][i][j],
              }),
            ),
          );
        }
      }
    }
    this.write(RUN_FILES.labelsCsv, rowsToCsv(rows));
    return grids;
  }

  checkpointDir(phase: string, epoch: number): string {
    return path.join(RUN_FILES.checkpoints, phase, `epoch-${String(epoch).padStart(3, '0')}`);
  }

  /** Removes the checkpoints of `phase` other than `keep` (relative folder). */
  pruneCheckpoints(phase: string, keep: string): void {
    const dir = this.file(RUN_FILES.checkpoints, phase);
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir)) {
      const rel = path.join(RUN_FILES.checkpoints, phase, entry);
      if (rel === keep) continue;
      fs.rmSync(this.file(rel), { recursive: true, force: true });
      killPoint(`${rel}: removed`);
    }
  }
}
