import * as vega from 'vega';
import * as vl from 'vega-lite';
import { withChartConfig } from './chart-config';

/** A Vega-Lite specification (what the chart builders return). */
export type ChartSpec = vl.TopLevelSpec;

/** A chart of the report: an id (for tests and anchors), a title, and its spec. */
export interface Chart {
  id: string;
  title: string;
  /** A sentence under the title saying how to read it. */
  caption?: string;
  spec: ChartSpec;
}

/**
 * Renders a Vega-Lite spec to an SVG string with Vega's headless renderer (no browser, no
 * canvas): compile to Vega, run the dataflow, serialise the scenegraph.
 */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const compiled = vl.compile(withChartConfig(spec), {
    logger: vega.logger(vega.Warn),
  }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg;
  } finally {
    view.finalize();
  }
}
