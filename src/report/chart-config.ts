/**
 * The look every chart shares (fonts, sizes), applied to a chart's Vega-Lite spec before it is
 * compiled: by the Node SVG renderer (render.ts) and by the browser demo alike. Pure: no vega.
 */
import type { ChartSpec } from './render';

/** The Vega-Lite config of every chart. */
export const CHART_CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  view: { stroke: '#ddd' },
  // No label limit: run names that share a long prefix must not all be cut to it.
  axis: { labelFontSize: 10, titleFontSize: 11, labelLimit: 0 },
  legend: { labelFontSize: 10, titleFontSize: 11, labelLimit: 0 },
  header: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0 },
} as const;

/** `spec` with {@link CHART_CONFIG} under its own config. */
export function withChartConfig(spec: ChartSpec): ChartSpec {
  return { ...spec, config: { ...CHART_CONFIG, ...spec.config } } as ChartSpec;
}
