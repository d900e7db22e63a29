/**
 * Draws the demo's charts in the page with Vega (from the page's globals): the same Vega-Lite
 * specs and config as report.html (src/report/charts.ts, chart-config.ts).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { withChartConfig } from '../src/report/chart-config';
import type { Chart } from '../src/report/render';

const views = new Map<string, vega.View>();

/** Draws `chart` into the figure `[data-slot=slot]` (title, caption, SVG), replacing the last. */
export async function drawChart(slot: string, chart: Chart): Promise<void> {
  const figure = document.querySelector<HTMLElement>(`figure[data-slot="${slot}"]`);
  if (figure === null) throw new Error(`the page has no figure for '${slot}'`);
  figure.dataset.chart = chart.id;
  let caption = figure.querySelector('figcaption');
  if (caption === null) {
    caption = document.createElement('figcaption');
    figure.prepend(caption);
  }
  caption.innerHTML = '';
  const title = document.createElement('strong');
  title.textContent = chart.title;
  caption.append(title, document.createElement('br'), chart.caption ?? '');
  views.get(slot)?.finalize();
  const compiled = vl.compile(withChartConfig(chart.spec)).spec;
  const container = figure.querySelector<HTMLElement>('.view') ?? figure;
  const view = new vega.View(vega.parse(compiled), { renderer: 'svg', container, hover: true });
  views.set(slot, view);
  await view.runAsync();
}

/** Lists the layers frozen now. */
export function showFrozen(layers: readonly string[]): void {
  const list = document.getElementById('frozen');
  if (list === null) return;
  list.innerHTML = '';
  for (const name of layers.length > 0 ? layers : ['(none)']) {
    const item = document.createElement('li');
    item.textContent = name;
    list.append(item);
  }
  list.dataset.count = String(layers.length);
}

/** Shows a status line. */
export function showStatus(text: string): void {
  const status = document.getElementById('status');
  if (status !== null) status.textContent = text;
}

/** Enables the download button: the reports as one JSON file. */
export function offerDownload(reports: () => unknown): void {
  const button = document.getElementById('download') as HTMLButtonElement | null;
  if (button === null) return;
  button.disabled = false;
  button.onclick = () => {
    const blob = new Blob([JSON.stringify(reports(), null, 2)], { type: 'application/json' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = 'analysis-reports.json';
    link.click();
    URL.revokeObjectURL(link.href);
  };
}
