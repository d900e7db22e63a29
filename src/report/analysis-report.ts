/**
 * The report of an analysis-only run (`tfjs-antifragile analyze`): the inputs, the reference
 * accuracies, response curves with a legend, the label heatmap and the score table.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { AnalysisReport } from '../analysis/types';
import { labelGrid } from '../experiment/run-folder';
import { labelHeatmapChart, responseCurvesChart } from './charts';
import { escapeHtml, figure, num, page, table } from './html';
import { scoreTable } from './run-report';

/** The HTML of an analysis report; `inputs` are shown as a table (model, data, backend, …). */
export async function buildAnalysisReport(
  title: string,
  report: AnalysisReport,
  inputs: Record<string, string>,
): Promise<string> {
  const summary =
    `<p>${report.examples} examples, reference accuracy clean ${num(report.reference.clean)}, ` +
    `adversarial (${escapeHtml(report.options.attack)}, ε = ${report.options.epsilon}) ` +
    `${num(report.reference.adversarial)}; ${num(report.seconds, 1)} s on ${escapeHtml(report.backend)}.</p>`;
  const sections = [
    `<h1>${escapeHtml(title)}</h1>`,
    summary,
    '<h2>Inputs</h2>',
    table(
      ['input', 'value'],
      Object.entries(inputs).map(([k, v]) => [k, v]),
    ),
    '<h2>Response curves</h2>',
    await figure(responseCurvesChart(report)),
    '<h2>Labels</h2>',
    await figure(labelHeatmapChart(labelGrid('analyze', [report]))),
    '<h2>Filtering scores</h2>',
    scoreTable(report),
    '<h2>Options</h2>',
    `<pre>${escapeHtml(JSON.stringify(report.options, null, 2))}</pre>`,
  ];
  return page(`${title} — tfjs-antifragile analyze`, sections.join('\n'));
}

/** Writes `report.html` of an analyze run folder (from its analysis.json and run.json). */
export async function writeAnalysisReport(dir: string): Promise<string> {
  const report = JSON.parse(
    fs.readFileSync(path.join(dir, 'analysis.json'), 'utf8'),
  ) as AnalysisReport;
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as {
    inputs?: Record<string, unknown>;
  };
  const inputs: Record<string, string> = {};
  for (const [k, v] of Object.entries(info.inputs ?? {})) {
    inputs[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, await buildAnalysisReport(path.basename(dir), report, inputs));
  return file;
}
