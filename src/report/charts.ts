import type { AnalysisReport, FilterId, ScoreId } from '../analysis/types';
import { LABELS } from '../analysis/types';
import { baselineValue, normaliseCurve } from '../analysis/scores';
import type { AccuracyPair, Comparison } from '../experiment/comparison';
import { phaseArm } from '../experiment/phase-id';
import type { FrozenRecord, LabelGrid, MetricRow } from '../experiment/run-folder';
import type { Chart, ChartSpec } from './render';

/**
 * Label colours, shared by every chart and table: Okabe & Ito's colour-blind-safe palette
 * (vermillion, grey, blue), told apart with any colour vision and in greyscale by lightness.
 */
export const LABEL_COLORS: Record<string, string> = {
  fragile: '#d55e00',
  robust: '#bbbbbb',
  antifragile: '#0072b2',
};

const labelScale = { domain: [...LABELS], range: LABELS.map((l) => LABEL_COLORS[l]) };

// Every chart here is a facet of one unit panel; these name its Vega-Lite parts.
type FacetSpec = Extract<ChartSpec, { facet: unknown }>;
type Panel = Extract<FacetSpec['spec'], { mark: unknown }>;
type Encoding = NonNullable<Panel['encoding']>;
type ChartHead = Pick<Chart, 'id' | 'title' | 'caption'>;

/** An analysed epoch's name on a chart axis: `start` for epoch 0 (the phase start), else its number. */
export function epochName(epoch: number): string {
  return epoch <= 0 ? 'start' : String(epoch);
}

/** Epochs counted over the whole run: training epochs 1…E, then each branch's E+1…E+R. */
export function overallEpoch(row: MetricRow, trainEpochs: number): number {
  return row.phase === 'train' ? row.epoch : trainEpochs + row.epoch;
}

/** A chart of `values` laid out by `layout`: the skeleton every builder here returns. */
function facetChart(about: ChartHead, values: object[], layout: Omit<FacetSpec, 'data'>): Chart {
  return { ...about, spec: { data: { values }, ...layout } };
}

/** A nominal field without a title: a facet header or an axis whose labels speak for it. */
function untitled(field: string) {
  return { field, type: 'nominal', title: null } as const;
}

/** Metric columns drawn as one line each: `key` holds the line's name, `value` the number. */
interface Series {
  key: string;
  value: string;
  columns: Array<[name: string, column: string]>;
}

const TRAINING_METRICS: Series = {
  key: 'metric',
  value: 'value',
  columns: [
    ['loss', 'loss'],
    ['training accuracy', 'acc'],
  ],
};

const TEST_ACCURACY: Series = {
  key: 'set',
  value: 'accuracy',
  columns: [
    ['clean', 'test_acc'],
    ['FGSM', 'test_fgsm_acc'],
  ],
};

/** One data point per row and series column, at the row's overall epoch; `line` says whose line. */
function epochPoints(
  rows: MetricRow[],
  trainEpochs: number,
  series: Series,
  line: (row: MetricRow) => object,
): Array<{ epoch: number }> {
  return rows.flatMap((r) =>
    series.columns.map(([name, column]) => ({
      ...line(r),
      epoch: overallEpoch(r, trainEpochs),
      [series.key]: name,
      [series.value]: Number(r[column]),
    })),
  );
}

/**
 * Whole-epoch ticks over the range of `points`' epochs, at most 11 of them. Explicit values:
 * Vega's `tickMinStep: 1` still ticks halves on a short range (1, 1.5, 2 shown as "1, 2, 2").
 */
export function epochTicks(points: ReadonlyArray<{ epoch: number }>): number[] {
  const epochs = points.map((p) => p.epoch).filter(Number.isFinite);
  if (epochs.length === 0) return [];
  const first = Math.floor(Math.min(...epochs));
  const last = Math.ceil(Math.max(...epochs));
  const step = Math.max(1, Math.ceil((last - first) / 10));
  const ticks: number[] = [];
  for (let e = first; e <= last; e += step) ticks.push(e);
  return ticks;
}

/** The x channel of the overall epoch, ticked at whole epochs of `points`. */
function epochX(points: ReadonlyArray<{ epoch: number }>, title?: string): Encoding['x'] {
  return {
    field: 'epoch',
    type: 'quantitative',
    ...(title === undefined ? {} : { title }),
    axis: { values: epochTicks(points), format: 'd' },
  };
}

/** Accuracy on a fixed 0…1 scale, so panels and runs compare at a glance. */
function accuracyY(): Encoding['y'] {
  return { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] } };
}

/** A panel of one line per `lineField` value against the epoch. */
function epochLines(lineField: string, x: Encoding['x'], y: Encoding['y'], height = 180): Panel {
  return {
    width: 300,
    height,
    mark: { type: 'line', point: true },
    encoding: { x, y, color: { field: lineField, type: 'nominal' } },
  };
}

/** A panel of rect cells sized by their count, with a floor so small grids stay legible. */
function cellGrid(width: number, height: number, encoding: Encoding): Panel {
  return {
    width: Math.max(80, width),
    height: Math.max(60, height),
    mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 },
    encoding,
  };
}

/**
 * One run's `series` per overall epoch: a panel per series column, one line per phase, so the
 * retraining branches continue where training ended.
 */
function phaseLinesChart(
  about: ChartHead,
  rows: MetricRow[],
  trainEpochs: number,
  series: Series,
  y: Encoding['y'],
  resolve?: FacetSpec['resolve'],
): Chart {
  const points = epochPoints(rows, trainEpochs, series, (r) => ({ phase: r.phase }));
  return facetChart(about, points, {
    facet: { column: untitled(series.key) },
    spec: epochLines('phase', epochX(points, 'epoch'), y),
    ...(resolve && { resolve }),
  });
}

/** Training loss and accuracy per epoch, one line per phase. */
export function trainingCurvesChart(rows: MetricRow[], trainEpochs: number): Chart {
  return phaseLinesChart(
    {
      id: 'training-curves',
      title: 'Training curves',
      caption:
        'Loss and training accuracy per epoch; the retraining branches continue after the training epochs.',
    },
    rows,
    trainEpochs,
    TRAINING_METRICS,
    { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
    { scale: { y: 'independent' } },
  );
}

/** Clean and FGSM test accuracy per epoch, one line per phase. */
export function testAccuracyChart(rows: MetricRow[], trainEpochs: number): Chart {
  return phaseLinesChart(
    {
      id: 'test-accuracy',
      title: 'Test accuracy, clean and under FGSM',
      caption:
        'Top-1 accuracy on the held-out examples after each epoch, clean and against FGSM at the recipe’s ε.',
    },
    rows,
    trainEpochs,
    TEST_ACCURACY,
    accuracyY(),
  );
}

/**
 * Response curves of one report: normalised clean and adversarial accuracy and the baseline
 * against filtering progress, one panel per parameter (rows) and filter (columns).
 */
export function responseCurvesChart(
  report: AnalysisReport,
  id = 'response-curves',
  phase = 'train',
): Chart {
  const values: Array<Record<string, unknown>> = [];
  for (const p of report.parameters) {
    for (const [filter, result] of Object.entries(p.filters)) {
      if (!result) continue;
      const clean = normaliseCurve(result.steps.map((s) => s.clean)).curve;
      const adversarial = normaliseCurve(result.steps.map((s) => s.adversarial)).curve;
      result.steps.forEach((s, k) => {
        const base = { parameter: p.name, filter, progress: s.progress };
        values.push({ ...base, curve: 'clean', value: clean[k] });
        values.push({ ...base, curve: 'FGSM', value: adversarial[k] });
        values.push({
          ...base,
          curve: 'baseline',
          value: baselineValue(report.options.baseline, s.removed, p.size),
        });
      });
    }
  }
  const order = report.parameters.map((p) => p.name);
  const curves = ['clean', 'FGSM', 'baseline'];
  return facetChart(
    {
      id,
      title: `Response curves (${phase}, epoch ${epochName(report.epoch ?? 0)})`,
      caption:
        'Accuracy relative to the unfiltered model (clean, FGSM) and the baseline, against filtering progress u; ' +
        'Ψ is the area between a curve and the baseline.',
    },
    values,
    {
      facet: {
        row: { field: 'parameter', type: 'nominal', sort: order, title: null },
        column: untitled('filter'),
      },
      spec: {
        width: 170,
        height: 90,
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x: { field: 'progress', type: 'quantitative', title: 'filtering progress u' },
          y: { field: 'value', type: 'quantitative', title: 'relative accuracy' },
          color: {
            field: 'curve',
            type: 'nominal',
            scale: { domain: curves, range: ['#0072b2', '#e69f00', '#7f7f7f'] },
            legend: { title: 'curve', orient: 'top' },
          },
          strokeDash: {
            field: 'curve',
            type: 'nominal',
            scale: {
              domain: curves,
              range: [
                [1, 0],
                [1, 0],
                [4, 3],
              ],
            },
            legend: { title: 'curve', orient: 'top' },
          },
        },
      },
    },
  );
}

/** Parameter × epoch heatmap of labels, one panel per (score, filter). */
export function labelHeatmapChart(grid: LabelGrid): Chart {
  const values: Array<Record<string, unknown>> = [];
  for (const [filter, byScore] of Object.entries(grid.labels) as [
    FilterId,
    Record<ScoreId, string[][]>,
  ][]) {
    for (const [score, labels] of Object.entries(byScore) as [ScoreId, string[][]][]) {
      grid.parameters.forEach((parameter, i) =>
        grid.epochs.forEach((epoch, j) =>
          values.push({
            filter,
            score,
            parameter,
            epoch: epochName(epoch),
            label: labels[i][j],
            psi: grid.scores[filter]?.[score][i][j],
          }),
        ),
      );
    }
  }
  const epochOrder = grid.epochs.map(epochName);
  return facetChart(
    {
      id: `labels-${grid.phase}`,
      title: `Labels per parameter and epoch (${grid.phase})`,
      caption:
        'Each cell: the label of a parameter’s filtering score (rows: score; columns: filter).',
    },
    values,
    {
      facet: {
        row: {
          field: 'score',
          type: 'nominal',
          title: 'score',
          sort: ['clean', 'adversarial', 'difference'],
        },
        column: untitled('filter'),
      },
      spec: cellGrid(22 * grid.epochs.length, 14 * grid.parameters.length, {
        x: { field: 'epoch', type: 'ordinal', sort: epochOrder, title: 'epoch' },
        y: { field: 'parameter', type: 'ordinal', sort: grid.parameters, title: null },
        color: { field: 'label', type: 'nominal', scale: labelScale },
        tooltip: [
          { field: 'parameter' },
          { field: 'epoch' },
          { field: 'label' },
          { field: 'psi', format: '.4f', title: 'Ψ' },
        ],
      }),
    },
  );
}

/** Which layers are frozen after each epoch of the selective phases. */
export function frozenLayersChart(frozen: FrozenRecord[], layers: string[]): Chart {
  const values = frozen.flatMap((r) =>
    layers.map((layer) => ({
      phase: r.phase,
      epoch: r.epoch,
      layer,
      state: r.layers.includes(layer) ? 'frozen' : 'training',
    })),
  );
  const epochs = Math.max(0, ...frozen.map((r) => r.epoch));
  return facetChart(
    {
      id: 'frozen-layers',
      title: 'Frozen layers over time (selective retraining)',
      caption:
        'After each epoch of a branch that freezes (x: the epochs the branch has finished): the layers frozen, ' +
        'because their parameter was labelled fragile (selective) or drawn at random (random-freeze).',
    },
    values,
    {
      facet: { column: untitled('phase') },
      // Each panel's x title fits inside its (narrow) panel and the panels stand apart, so that
      // neighbouring titles do not run together.
      spacing: 28,
      spec: cellGrid(26 * epochs, 14 * layers.length, {
        x: { field: 'epoch', type: 'ordinal', title: 'epoch' },
        y: { field: 'layer', type: 'ordinal', sort: layers, title: null },
        color: {
          field: 'state',
          type: 'nominal',
          scale: { domain: ['frozen', 'training'], range: ['#3b6fb6', '#e8eef7'] },
        },
      }),
    },
  );
}

/**
 * Ψ of `score` per parameter and analysed epoch: one row of panels per analysed phase (in the
 * order given), one column per filter; the colour scale diverges at 0 in the label colours'
 * directions (fragile below, antifragile above).
 */
export function psiHeatmapChart(grids: readonly LabelGrid[], score: ScoreId): Chart {
  const values: Array<Record<string, unknown>> = [];
  for (const grid of grids) {
    for (const [filter, byScore] of Object.entries(grid.scores)) {
      grid.parameters.forEach((parameter, i) =>
        grid.epochs.forEach((epoch, j) => {
          const psi = byScore?.[score][i][j];
          if (psi === undefined || !Number.isFinite(psi)) return;
          values.push({ phase: grid.phase, filter, parameter, epoch: epochName(epoch), psi });
        }),
      );
    }
  }
  const epochs = [...new Set(grids.flatMap((g) => g.epochs))].sort((a, b) => a - b);
  const parameters = grids[0]?.parameters ?? [];
  return facetChart(
    {
      id: `psi-${score}`,
      title: `Ψ per parameter and epoch (${score} score)`,
      caption:
        `The ${score} filtering score Ψ of each parameter at each analysed epoch (rows: phase; ` +
        'columns: filter). Below −τ fragile, above τ antifragile; the colours diverge at 0.',
    },
    values,
    {
      facet: {
        row: { field: 'phase', type: 'nominal', sort: grids.map((g) => g.phase), title: null },
        column: untitled('filter'),
      },
      spec: cellGrid(22 * epochs.length, 14 * parameters.length, {
        x: { field: 'epoch', type: 'ordinal', sort: epochs.map(epochName), title: 'epoch' },
        y: { field: 'parameter', type: 'ordinal', sort: parameters, title: null },
        color: {
          field: 'psi',
          type: 'quantitative',
          title: 'Ψ',
          scale: { scheme: 'blueorange', reverse: true, domainMid: 0 },
        },
        tooltip: [
          { field: 'phase' },
          { field: 'parameter' },
          { field: 'epoch' },
          { field: 'psi', format: '.4f', title: 'Ψ' },
        ],
      }),
      resolve: { scale: { x: 'independent' } },
    },
  );
}

/**
 * The fraction of the trainable weights frozen after each epoch, one line per branch that
 * freezes (coloured by arm, one line per seed), from `frozen.json`'s `weights`; records without
 * them (runs recorded before they were added) are left out.
 */
export function frozenWeightsChart(frozen: readonly FrozenRecord[]): Chart {
  const values = frozen.flatMap((r) => {
    if (!r.weights || r.weights.total <= 0) return [];
    const { arm, seed } = phaseArm(r.phase) ?? { arm: r.phase, seed: 0 };
    return [
      { phase: r.phase, arm, seed, epoch: r.epoch, fraction: r.weights.frozen / r.weights.total },
    ];
  });
  const arms = [...new Set(values.map((v) => v.arm))];
  return facetChart(
    {
      id: 'frozen-weights',
      title: 'Fraction of the weights frozen, per arm',
      caption:
        'After each epoch of a branch that freezes: the share of the trainable weights (elements) in ' +
        'frozen layers; one line per seed.',
    },
    values,
    {
      facet: { column: { field: 'arm', type: 'nominal', sort: arms, title: null } },
      spec: {
        width: 220,
        height: 160,
        mark: { type: 'line', point: true },
        encoding: {
          x: { ...epochX(values, 'epoch'), scale: { domainMin: 0 } },
          y: {
            field: 'fraction',
            type: 'quantitative',
            title: 'weights frozen',
            scale: { domain: [0, 1] },
            axis: { format: '.0%' },
          },
          color: { field: 'arm', type: 'nominal', sort: arms, legend: null },
          detail: { field: 'phase', type: 'nominal' },
          tooltip: [{ field: 'phase' }, { field: 'epoch' }, { field: 'fraction', format: '.1%' }],
        },
      },
    },
  );
}

/** Normal vs selective retraining: accuracy at the shared checkpoint and after each branch. */
export function comparisonChart(comparison: Comparison, id = 'comparison'): Chart {
  const values = comparison.seeds.flatMap((s) =>
    (['start', 'normal', 'selective'] as const).flatMap((branch) => [
      { seed: `seed ${s.seed}`, branch, set: 'clean', accuracy: s[branch].clean },
      { seed: `seed ${s.seed}`, branch, set: 'FGSM', accuracy: s[branch].fgsm },
    ]),
  );
  return facetChart(
    {
      id,
      title: 'Normal vs selective retraining',
      caption:
        'Test accuracy at the shared checkpoint (start) and after the same epochs of normal and selective retraining.',
    },
    values,
    {
      facet: { column: untitled('set') },
      spec: {
        width: 260,
        height: 180,
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          x: {
            field: 'branch',
            type: 'nominal',
            sort: ['start', 'normal', 'selective'],
            title: null,
          },
          y: { field: 'accuracy', type: 'quantitative', scale: { zero: false } },
          color: { field: 'seed', type: 'nominal' },
        },
      },
    },
  );
}

/** The accuracies an arm comparison reports, in panel order. */
const GAIN_METRICS = [
  ['clean', 'clean'],
  ['fgsm', 'FGSM'],
  ['pgd', 'PGD'],
] as const;

/**
 * Each arm against normal retraining, one panel per accuracy (clean, FGSM, PGD), each on its own
 * scale: a point per seed (the arm's accuracy minus normal's for that seed, as `comparison.json`
 * holds them), the mean with its 95% interval from `comparison.gains`, and a zero line. Draws
 * the comparison's numbers; nothing is re-estimated here.
 */
export function armGainsChart(comparison: Comparison, id = 'arm-gains'): Chart {
  const arms = (comparison.arms ?? ['normal', 'selective']).filter((a) => a !== 'normal');
  const values: Array<Record<string, unknown>> = [];
  for (const arm of arms) {
    for (const [key, metric] of GAIN_METRICS) {
      for (const s of comparison.seeds) {
        const a = (s[arm] as AccuracyPair | undefined)?.[key];
        const b = s.normal?.[key];
        if (a === undefined || b === undefined) continue;
        values.push({ arm, metric, kind: 'seed', seed: `seed ${s.seed}`, gain: a - b });
      }
      const g = comparison.gains?.[arm]?.[key];
      if (g) {
        const [lo, hi] = Number.isFinite(g.ci95[0]) ? g.ci95 : [g.mean, g.mean];
        values.push({ arm, metric, kind: 'mean', gain: g.mean, lo, hi, n: g.n });
      }
    }
  }
  const x = {
    field: 'arm',
    type: 'nominal',
    sort: arms,
    title: null,
    axis: { labelAngle: 0 },
  } as const;
  const y = { field: 'gain', type: 'quantitative', title: 'accuracy − normal' } as const;
  const only = (kind: string) => [{ filter: `datum.kind === '${kind}'` }];
  const layer = [
    { mark: { type: 'rule', color: '#888', strokeDash: [3, 3] }, encoding: { y: { datum: 0 } } },
    {
      transform: only('seed'),
      mark: { type: 'point', filled: true, size: 45, opacity: 0.75 },
      encoding: { x, y, color: { field: 'seed', type: 'nominal', title: 'seed' } },
    },
    {
      transform: only('mean'),
      mark: { type: 'rule', strokeWidth: 2, color: 'black' },
      encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
    },
    {
      transform: only('mean'),
      mark: { type: 'tick', thickness: 2, size: 18, color: 'black' },
      encoding: { x, y, tooltip: ['gain', 'lo', 'hi', 'n'].map((field) => ({ field })) },
    },
  ];
  const column = { field: 'metric', type: 'nominal', sort: GAIN_METRICS.map((m) => m[1]) };
  return {
    id,
    title: 'Every arm against normal retraining',
    caption:
      'Accuracy of each arm minus normal retraining’s: per seed (points) and the mean over seeds with ' +
      'its paired 95% t-interval (black; one seed has no interval). Each panel has its own scale.',
    spec: {
      data: { values },
      facet: { column: { ...column, title: null } },
      spec: { width: 60 + 45 * arms.length, height: 180, layer },
      resolve: { scale: { y: 'independent' } },
    } as unknown as ChartSpec,
  };
}

/** Several runs side by side: clean and FGSM test accuracy per epoch, one line per run. */
export function runsAccuracyChart(
  runs: Array<{ id: string; rows: MetricRow[]; trainEpochs: number }>,
): Chart {
  const values = runs.flatMap((run) =>
    epochPoints(
      run.rows.filter((r) => r.phase === 'train'),
      run.trainEpochs,
      TEST_ACCURACY,
      () => ({ run: run.id }),
    ),
  );
  return facetChart(
    { id: 'runs-accuracy', title: 'Test accuracy per run (training phase)' },
    values,
    {
      facet: { column: untitled('set') },
      spec: epochLines('run', epochX(values), accuracyY(), 200),
    },
  );
}

/** Several runs side by side: label counts of each run's newest training analysis. */
export function runsLabelCountsChart(
  runs: Array<{ id: string; report?: AnalysisReport }>,
  score: ScoreId = 'adversarial',
): Chart {
  const values: Array<Record<string, unknown>> = [];
  for (const run of runs) {
    if (!run.report) continue;
    for (const p of run.report.parameters) {
      for (const [filter, result] of Object.entries(p.filters)) {
        if (result) values.push({ run: run.id, filter, label: result.labels[score] });
      }
    }
  }
  return facetChart(
    { id: 'runs-labels', title: `Labels of the ${score} score per run (newest analysis)` },
    values,
    {
      facet: { column: untitled('filter') },
      spec: {
        width: 200,
        height: Math.max(60, 24 * runs.length),
        mark: 'bar',
        encoding: {
          y: untitled('run'),
          x: { aggregate: 'count', type: 'quantitative', title: 'parameters' },
          color: { field: 'label', type: 'nominal', scale: labelScale },
        },
      },
    },
  );
}
