import * as fs from 'fs';
import * as path from 'path';
import { invariance } from '../analysis/invariance';
import { LABELS, SCORE_IDS } from '../analysis/types';
import { comparisonChart, runsAccuracyChart, runsLabelCountsChart } from './charts';
import { escapeHtml, figure, num, page, table } from './html';
import { comparisonTable, finalRows } from './run-report';
import { latestTrainReport, readRunData, type RunData } from './run-data';
import type { Recipe } from '../experiment/schema';
import { recipeParams } from '../experiment/tracking';

/** One line per run: what it trained and how it ended. */
export function runsSummaryRows(runs: RunData[]): string[][] {
  const differing = recipeDifferences(runs.map((r) => r.recipe));
  return runs.map((run, i) => {
    const train = finalRows(run.rows).find((r) => r.phase === 'train');
    const report = latestTrainReport(run);
    const fragile = report
      ? report.parameters.reduce(
          (n, p) =>
            n + Object.values(p.filters).filter((r) => r?.labels.adversarial === 'fragile').length,
          0,
        )
      : undefined;
    return [
      run.id,
      run.info.status,
      run.recipe.model.architecture,
      run.recipe.dataset.name,
      String(train ? train.epoch : 0),
      num(train?.test_acc),
      num(train?.test_fgsm_acc),
      String(run.recipe.analysis.epsilon),
      fragile === undefined ? '–' : String(fragile),
      run.comparison ? `${num(run.comparison.gain.fgsm)}` : '–',
      differing[i] || '–',
    ];
  });
}

/**
 * For each run, the recipe fields (flattened as MLflow params are: `training.epochs`) whose values
 * differ between the compared runs, as `key=value` joined by `; `.
 */
export function recipeDifferences(recipes: Recipe[]): string[] {
  const params = recipes.map((r) => recipeParams(r));
  const keys = [...new Set(params.flatMap((p) => Object.keys(p)))].sort();
  const differ = keys.filter((k) => new Set(params.map((p) => JSON.stringify(p[k]))).size > 1);
  return params.map((p) =>
    differ.map((k) => `${k}=${p[k] === undefined ? '–' : String(p[k])}`).join('; '),
  );
}

/** Column headers of {@link runsSummaryRows}, for the page and the CLI's table. */
export const SUMMARY_HEADERS = [
  'run',
  'status',
  'model',
  'dataset',
  'epochs',
  'test acc',
  'FGSM acc',
  'ε',
  'fragile (adv.)',
  'selective − normal FGSM',
  'recipe differs in',
];

/** The HTML page that puts several runs side by side. */
export async function buildCompareReport(runs: RunData[]): Promise<string> {
  const parts: string[] = [
    `<h1>Comparison of ${runs.length} runs</h1><p class="meta">tfjs-antifragile</p>`,
    '<h2>Runs</h2>' + table(SUMMARY_HEADERS, runsSummaryRows(runs)),
  ];
  parts.push(
    await figure(
      runsAccuracyChart(
        runs.map((r) => ({ id: r.id, rows: r.rows, trainEpochs: r.recipe.training.epochs })),
      ),
    ),
  );
  const withReports = runs.map((r) => ({ id: r.id, report: latestTrainReport(r) }));
  if (withReports.some((r) => r.report)) {
    parts.push(await figure(runsLabelCountsChart(withReports)));
    const reports = withReports.filter((r) => r.report).map((r) => r.report!);
    if (reports.length > 1) {
      const sameArchitecture = new Set(runs.map((r) => r.recipe.model.architecture)).size === 1;
      const inv = invariance(reports, { match: sameArchitecture ? 'name' : 'depth' });
      const rows: string[][] = [];
      for (const [filter, byScore] of Object.entries(inv.counts)) {
        for (const score of SCORE_IDS) {
          rows.push([filter, score, ...LABELS.map((l) => String(byScore[score][l]))]);
        }
      }
      parts.push(
        `<h2>Invariance across runs</h2><p>Parameters (matched by ${inv.match === 'name' ? 'name' : 'relative depth'}) ` +
          `whose label of the newest analysis is the same in all ${inv.reports} runs.</p>` +
          table(['filter', 'score', ...LABELS.map((l) => `invariant ${l}`)], rows),
      );
    }
  }
  for (const run of runs) {
    if (!run.comparison) continue;
    parts.push(
      `<h2>${escapeHtml(run.id)}: normal vs selective retraining</h2>` +
        comparisonTable(run.comparison) +
        (await figure(comparisonChart(run.comparison, `comparison-${run.id}`))),
    );
  }
  return page(`Comparison of ${runs.length} runs — tfjs-antifragile`, parts.join('\n'));
}

/** Reads the run folders, writes the comparison page to `out` and returns the runs' data. */
export async function writeCompareReport(dirs: string[], out: string): Promise<RunData[]> {
  const runs = dirs.map((d) => readRunData(d));
  const html = await buildCompareReport(runs);
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, html);
  return runs;
}
