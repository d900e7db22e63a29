/**
 * The epoch axes of the shared chart specs (report.html and the browser demo): whole-epoch ticks
 * on the training curves, and label-grid columns in epoch order, read from the rendered SVG.
 */
import type { AnalysisReport } from '../src/analysis/types';
import { labelGrid } from '../src/experiment/label-grid';
import type { MetricRow } from '../src/experiment/run-folder';
import { epochTicks, labelHeatmapChart, trainingCurvesChart } from '../src/report/charts';
import { renderSvg } from '../src/report/render';

/** The tick labels of every x axis in `svg`, one array per axis. */
function xAxisLabels(svg: string): string[][] {
  return svg
    .split('aria-label="X-axis')
    .slice(1)
    .map((axis) => {
      const labels = axis.split('role-axis-label')[1]?.split('</g>')[0] ?? '';
      return [...labels.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    });
}

/** A one-parameter report at record epoch `epoch`. */
function report(epoch: number): AnalysisReport {
  const result = {
    labels: { clean: 'fragile', adversarial: 'robust', difference: 'antifragile' },
    scores: { clean: -0.5, adversarial: 0, difference: 0.5 },
    steps: [],
  };
  return {
    epoch,
    options: { tolerance: 0.01 },
    parameters: [{ name: 'conv1/kernel', size: 4, filters: { lowpass: result } }],
  } as unknown as AnalysisReport;
}

describe('epoch axes of the chart specs', () => {
  it('training curves of 2 epochs tick 1 and 2 only (not "1, 2, 2")', async () => {
    const rows: MetricRow[] = [1, 2].map((epoch) => ({
      phase: 'train',
      epoch,
      loss: 2 - epoch / 5,
      acc: 0.3 + epoch / 10,
    }));
    const axes = xAxisLabels(await renderSvg(trainingCurvesChart(rows, 2).spec));
    expect(axes).toEqual([
      ['1', '2'],
      ['1', '2'],
    ]);
  });

  it('whole-epoch ticks cover the range, at most 11 of them', () => {
    expect(epochTicks([{ epoch: 1 }, { epoch: 3 }])).toEqual([1, 2, 3]);
    expect(epochTicks([{ epoch: 0 }, { epoch: 40 }])).toEqual([
      0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40,
    ]);
    expect(epochTicks([])).toEqual([]);
  });

  it('the label grid lists its epochs in order, whatever order the reports came in', async () => {
    const grid = labelGrid('train', [report(2), report(1), report(0)]);
    const axes = xAxisLabels(await renderSvg(labelHeatmapChart(grid).spec));
    expect(axes).toEqual([['start', '1', '2']]);
  });
});
