import * as fs from 'fs';
import * as path from 'path';
import { invariance } from '../analysis/invariance';
import type { AnalysisReport } from '../analysis/types';
import { LABELS, SCORE_IDS } from '../analysis/types';
import type { Comparison } from '../experiment/comparison';
import { RUN_FILES, type MetricRow } from '../experiment/run-folder';
import {
  armGainsChart,
  comparisonChart,
  epochName,
  frozenLayersChart,
  frozenWeightsChart,
  labelHeatmapChart,
  psiHeatmapChart,
  responseCurvesChart,
  testAccuracyChart,
  trainingCurvesChart,
} from './charts';
import { escapeHtml, figure, labelCell, num, page, table } from './html';
import { paneSelector, type PaneGroup } from './panes';
import { latestTrainReport, readRunData, type RunData } from './run-data';

/** The final row of each phase. */
export function finalRows(rows: readonly MetricRow[]): MetricRow[] {
  const last = new Map<string, MetricRow>();
  for (const row of rows) last.set(row.phase, row);
  return [...last.values()];
}

/** The table of a comparison: one row per seed, then the mean and the gain. */
export function comparisonTable(comparison: Comparison): string {
  const { mean, gain } = comparison;
  const withPgd = mean.normal.pgd !== undefined && mean.selective.pgd !== undefined;
  const pgd = (v: number | undefined) => (withPgd ? [v === undefined ? '–' : num(v)] : []);
  const row = (
    label: string,
    r: Pick<Comparison['mean'], 'start' | 'normal' | 'selective'>,
    frozen: string,
  ) => [
    label,
    num(r.start.clean),
    num(r.start.fgsm),
    num(r.normal.clean),
    num(r.normal.fgsm),
    ...pgd(r.normal.pgd),
    num(r.selective.clean),
    num(r.selective.fgsm),
    ...pgd(r.selective.pgd),
    frozen,
  ];
  const rows = comparison.seeds.map((s) =>
    row(String(s.seed), s, s.frozenAtEnd === undefined ? '–' : String(s.frozenAtEnd)),
  );
  rows.push(row('mean', mean, ''));
  const signed = (v: number) => `${v >= 0 ? '+' : ''}${num(v)}`;
  const gainSpan = (v: number) => `<span class="${v >= 0 ? 'good' : 'bad'}">${signed(v)}</span>`;
  return (
    table(
      [
        'seed',
        'start clean',
        'start FGSM',
        'normal clean',
        'normal FGSM',
        ...(withPgd ? ['normal PGD'] : []),
        'selective clean',
        'selective FGSM',
        ...(withPgd ? ['selective PGD'] : []),
        'frozen layers',
      ],
      rows,
    ) +
    `<p>Selective − normal (mean): clean ${gainSpan(gain.clean)}, FGSM ${gainSpan(gain.fgsm)}` +
    (gain.pgd !== undefined ? `, PGD ${gainSpan(gain.pgd)}` : '') +
    '.</p>'
  );
}

/** Ψ and labels of every (parameter, filter) of one report. */
export function scoreTable(report: AnalysisReport): string {
  const rows: Array<Array<string | { html: string }>> = [];
  for (const p of report.parameters) {
    for (const [filter, r] of Object.entries(p.filters)) {
      if (!r) continue;
      rows.push([
        p.name,
        filter,
        String(p.size),
        num(r.scores.clean),
        { html: labelCell(r.labels.clean) },
        num(r.scores.adversarial),
        { html: labelCell(r.labels.adversarial) },
        num(r.scores.difference),
        { html: labelCell(r.labels.difference) },
      ]);
    }
  }
  return table(
    ['parameter', 'filter', 'size', 'Ψ clean', '', 'Ψ adversarial', '', 'Ψ difference', ''],
    rows,
  );
}

/** Which parameters keep their label across the epochs of the reports. */
export function invarianceSection(reports: AnalysisReport[]): string {
  const inv = invariance(reports);
  const rows: string[][] = [];
  for (const [filter, byScore] of Object.entries(inv.counts)) {
    for (const score of SCORE_IDS) {
      const counts = byScore[score];
      const total = inv.entries.filter((e) => e.filter === filter && e.score === score).length;
      rows.push([
        filter,
        score,
        ...LABELS.map((l) => String(counts[l])),
        `${LABELS.reduce((s, l) => s + counts[l], 0)} / ${total}`,
      ]);
    }
  }
  const invariantAdv = inv.entries.filter((e) => e.invariant && e.score === 'adversarial');
  const list = invariantAdv.length
    ? `<p>Invariant under the adversarial score: ${invariantAdv
        .map((e) => `${escapeHtml(e.parameter)} (${escapeHtml(e.filter)}: ${escapeHtml(e.label)})`)
        .join(', ')}.</p>`
    : '<p>No parameter keeps its adversarial label across these epochs.</p>';
  return (
    `<p>Across ${inv.reports} analysed epoch(s): parameters whose label never changes, per filter and score.</p>` +
    table(
      [
        'filter',
        'score',
        'invariant fragile',
        'invariant robust',
        'invariant antifragile',
        'invariant / all',
      ],
      rows,
    ) +
    list
  );
}

/** Which examples the analysis (and so the labels that decide freezing) was computed on. */
export function analysisData(recipe: RunData['recipe']): string {
  const { dataset, analysis } = recipe;
  if (!analysis.enabled) return '–';
  if (dataset.validationSize !== undefined) {
    return `${analysis.examples} of the ${dataset.validationSize} examples held out of the training data (dataset.validationSize); never the test set`;
  }
  return `the first ${analysis.examples} test examples (no dataset.validationSize): the labels saw the test set`;
}

/**
 * The response curves of every analysed epoch of every analysed phase, one pane each, behind a
 * selector that needs no script; the newest training analysis is shown first.
 */
export async function responseCurvesPanes(
  analyses: RunData['analyses'],
  shown?: AnalysisReport,
): Promise<string> {
  const groups: PaneGroup[] = [];
  let checked: string | undefined;
  for (const [phase, reports] of Object.entries(analyses)) {
    const panes = [];
    for (const report of reports) {
      const key = `${phase}-${report.epoch ?? 0}`;
      if (report === shown) checked = key;
      const chart = responseCurvesChart(report, `response-curves-${key}`, phase);
      panes.push({ key, label: epochName(report.epoch ?? 0), html: await figure(chart) });
    }
    groups.push({ title: phase, panes });
  }
  return paneSelector('response-curves', groups, checked);
}

function header(data: RunData): string {
  const { recipe, info } = data;
  const facts: Array<[string, string]> = [
    ['status', info.status],
    ['recipe', recipe.name],
    ...(recipe.description
      ? ([['description', recipe.description]] as Array<[string, string]>)
      : []),
    ['model', `${recipe.model.architecture} (width ${recipe.model.width})`],
    [
      'dataset',
      `${recipe.dataset.name}${recipe.dataset.dir ? ` from ${recipe.dataset.dir}` : ' (bundled digits)'}`,
    ],
    [
      'training',
      `${recipe.training.optimizer}, learning rate ${recipe.training.learningRate}, batch ${recipe.training.batchSize}, ${recipe.training.epochs} epochs, seed ${recipe.training.seed}`,
    ],
    [
      'analysis',
      recipe.analysis.enabled
        ? `ε ${recipe.analysis.epsilon}, K ${recipe.analysis.steps}, ${recipe.analysis.filters.join('/')}, τ ${recipe.analysis.tolerance}, ${recipe.analysis.attack}, ${recipe.analysis.examples} examples, every ${recipe.analysis.every} epoch(s)`
        : 'off',
    ],
    ['analysis data', analysisData(recipe)],
    ['backend', info.backend ?? '–'],
    ['started', info.created],
    ['updated', info.updated],
    ['invocations', String(info.invocations.length)],
  ];
  if (info.mlflowRuns.length) facts.push(['MLflow runs', info.mlflowRuns.join(', ')]);
  if (info.error) facts.push(['error', info.error]);
  return (
    `<h1>${escapeHtml(data.id)}</h1><p class="meta">tfjs-antifragile run report</p>` +
    table(
      ['', ''],
      facts.map(([k, v]) => [k, v]),
    )
  );
}

/** The HTML of a run's report (see {@link writeRunReport}). */
export async function buildRunReport(data: RunData): Promise<string> {
  const parts: string[] = [header(data)];
  const trainEpochs = data.recipe.training.epochs;
  const nav: string[] = [];
  const section = (id: string, title: string, html: string) => {
    nav.push(`<a href="#${id}">${escapeHtml(title)}</a>`);
    parts.push(`<section id="${id}"><h2>${escapeHtml(title)}</h2>${html}</section>`);
  };

  if (data.rows.length) {
    const finals = finalRows(data.rows).map((r) => [
      r.phase,
      String(r.epoch),
      num(r.loss),
      num(r.acc),
      num(r.test_acc),
      num(r.test_fgsm_acc),
      r.frozen_layers === undefined ? '–' : String(r.frozen_layers),
    ]);
    section(
      'training',
      'Training',
      table(
        ['phase', 'epochs', 'loss', 'training acc', 'test acc', 'FGSM acc', 'frozen layers'],
        finals,
      ) +
        (await figure(trainingCurvesChart(data.rows, trainEpochs))) +
        (await figure(testAccuracyChart(data.rows, trainEpochs))),
    );
  } else {
    section('training', 'Training', '<p>No epoch has finished yet.</p>');
  }

  if (data.comparison) {
    section(
      'comparison',
      'Retraining arms against normal retraining',
      comparisonTable(data.comparison) +
        (await figure(armGainsChart(data.comparison))) +
        (await figure(comparisonChart(data.comparison))),
    );
  }

  const latest = latestTrainReport(data);
  if (latest) {
    let html =
      `<p>Newest analysis of the training phase: epoch ${latest.epoch ?? 0}, ${latest.examples} examples, ` +
      `reference accuracy clean ${num(latest.reference.clean)}, adversarial ${num(latest.reference.adversarial)}, ` +
      `${num(latest.seconds, 1)} s on ${escapeHtml(latest.backend)}.</p>`;
    html +=
      '<h3>Response curves</h3><p>Pick a phase’s analysed epoch (start = before its first epoch).</p>' +
      (await responseCurvesPanes(data.analyses, latest));
    for (const grid of data.grids) html += await figure(labelHeatmapChart(grid));
    html += await figure(psiHeatmapChart(data.grids, data.recipe.retraining.score));
    html += `<h3>Filtering scores (epoch ${latest.epoch ?? 0})</h3>` + scoreTable(latest);
    html += '<h3>Invariance</h3>' + invarianceSection(data.analyses.train ?? [latest]);
    section('analysis', 'Synaptic-filtering analysis', html);
  }

  if (data.frozen.length) {
    const layers = [
      ...new Set([
        ...(latest?.parameters.map((p) => p.layer) ?? []),
        ...data.frozen.flatMap((r) => r.layers),
      ]),
    ];
    const weights = data.frozen.some((r) => r.weights)
      ? await figure(frozenWeightsChart(data.frozen))
      : '';
    section(
      'frozen',
      'Frozen layers',
      weights + (await figure(frozenLayersChart(data.frozen, layers))),
    );
  }

  section('recipe', 'Recipe', `<pre>${escapeHtml(JSON.stringify(data.recipe, null, 2))}</pre>`);
  parts.splice(1, 0, `<nav>${nav.join('')}</nav>`);
  return page(`${data.id} — tfjs-antifragile`, parts.join('\n'));
}

/** Writes `report.html` into a run folder (from what the folder holds) and returns its path. */
export async function writeRunReport(dir: string): Promise<string> {
  const data = readRunData(dir);
  const html = await buildRunReport(data);
  const file = path.join(data.dir, RUN_FILES.report);
  fs.writeFileSync(`${file}.tmp`, html);
  fs.renameSync(`${file}.tmp`, file);
  return file;
}
