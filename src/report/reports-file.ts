/**
 * The report of a JSON file of `AnalysisReport`s (one, or an array: the browser demo's download,
 * a run folder's `analysis/*.json`): `tfjs-antifragile report <file.json>` writes
 * `<file>.html` beside it with the analyses' summary, the newest response curves, the label grid
 * over the analysed epochs and the newest scores.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { AnalysisReport } from '../analysis/types';
import { labelGrid } from '../experiment/label-grid';
import { labelHeatmapChart, responseCurvesChart } from './charts';
import { escapeHtml, figure, num, page, table } from './html';
import { scoreTable } from './run-report';

/** The reports in `file`, checked to be AnalysisReports (one object or an array), in epoch order. */
export function readReportsFile(file: string): AnalysisReport[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a readable JSON file (${(err as Error).message})`);
  }
  const reports = Array.isArray(parsed) ? parsed : [parsed];
  reports.forEach((r, i) => {
    const report = r as Partial<AnalysisReport> | null;
    const ok =
      typeof report === 'object' &&
      report !== null &&
      Array.isArray(report.parameters) &&
      typeof report.options === 'object' &&
      typeof report.reference === 'object';
    if (!ok) {
      throw new Error(
        `${file}: entry ${i} is not an AnalysisReport (expected an object with parameters, options and reference, as analyze() and the demo's download write)`,
      );
    }
  });
  if (reports.length === 0) throw new Error(`${file}: holds no AnalysisReport (an empty array)`);
  return (reports as AnalysisReport[]).sort((a, b) => (a.epoch ?? 0) - (b.epoch ?? 0));
}

/** The HTML page of `reports` (from {@link readReportsFile}), titled `title`. */
export async function buildReportsFileReport(
  title: string,
  reports: AnalysisReport[],
): Promise<string> {
  const newest = reports[reports.length - 1];
  const rows = reports.map((r) => [
    r.epoch === undefined ? '—' : String(r.epoch),
    String(r.examples),
    num(r.reference.clean),
    num(r.reference.adversarial),
    num(r.seconds, 1),
    r.backend,
  ]);
  const sections = [
    `<h1>${escapeHtml(title)}</h1>`,
    `<p>${reports.length} analyses (epochs as recorded: epochs finished, 0 = the start).</p>`,
    table(['epoch', 'examples', 'clean', 'adversarial', 'seconds', 'backend'], rows),
    `<h2>Response curves (epoch ${escapeHtml(newest.epoch ?? '—')})</h2>`,
    await figure(responseCurvesChart(newest)),
    '<h2>Labels</h2>',
    await figure(labelHeatmapChart(labelGrid('analyses', reports))),
    `<h2>Filtering scores (epoch ${escapeHtml(newest.epoch ?? '—')})</h2>`,
    scoreTable(newest),
  ];
  return page(`${title} — tfjs-antifragile`, sections.join('\n'));
}

/** Writes `<file without .json>.html` beside `file`; returns its path. */
export async function writeReportsFileReport(file: string): Promise<string> {
  const reports = readReportsFile(file);
  const base = path.basename(file, path.extname(file));
  const out = path.join(path.dirname(file), `${base}.html`);
  fs.writeFileSync(out, await buildReportsFileReport(base, reports));
  return out;
}
