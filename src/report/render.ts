import * as vega from 'vega';
import * as vl from 'vega-lite';

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

const CONFIG: vl.Config = {
  font: 'Helvetica, Arial, sans-serif',
  view: { stroke: '#ddd' },
  // No label limit: run names that share a long prefix must not all be cut to it.
  axis: { labelFontSize: 10, titleFontSize: 11, labelLimit: 0 },
  legend: { labelFontSize: 10, titleFontSize: 11, labelLimit: 0 },
  header: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0 },
};

/**
 * Renders a Vega-Lite spec to an SVG string with Vega's headless renderer (no browser, no
 * canvas): compile to Vega, run the dataflow, serialise the scenegraph.
 */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const compiled = vl.compile({ ...spec, config: { ...CONFIG, ...spec.config } } as ChartSpec, {
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
