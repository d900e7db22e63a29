/**
 * Reports: one self-contained `report.html` per run, and a page that compares runs. Charts are
 * Vega-Lite specifications rendered to SVG by Vega's headless renderer and inlined.
 */
export { renderSvg } from './render';
export type { Chart, ChartSpec } from './render';
export {
  trainingCurvesChart,
  testAccuracyChart,
  responseCurvesChart,
  labelHeatmapChart,
  frozenLayersChart,
  frozenWeightsChart,
  psiHeatmapChart,
  armGainsChart,
  comparisonChart,
  runsAccuracyChart,
  runsLabelCountsChart,
  LABEL_COLORS,
} from './charts';
export { readRunData, latestTrainReport } from './run-data';
export type { RunData } from './run-data';
export { buildRunReport, writeRunReport, comparisonTable, scoreTable } from './run-report';
export {
  buildCompareReport,
  writeCompareReport,
  runsSummaryRows,
  SUMMARY_HEADERS,
} from './compare-report';
export { buildAnalysisReport, writeAnalysisReport } from './analysis-report';
