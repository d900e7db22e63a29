/** A cell: text as given, numbers formatted by the column's formatter. */
export type Cell = string | number | null | undefined;

/**
 * Formats rows as a GitHub-flavoured Markdown table (readable in a terminal and pasteable into
 * the README). `null`/`undefined` cells print as `–`.
 */
export function markdownTable(header: string[], rows: Cell[][]): string {
  const text = rows.map((row) => header.map((_, i) => cellText(row[i])));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? ':' : '-').padEnd(w + 1, '-') + (i === 0 ? '-' : ':')).join('|')}|`;
  return [line(header), rule, ...text.map(line)].join('\n');
}

function cellText(cell: Cell): string {
  if (cell === null || cell === undefined) return '–';
  return typeof cell === 'number' ? formatNumber(cell) : cell;
}

/** Three significant digits, no exponent for the ranges benchmarks print. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  if (abs >= 0.001) return value.toPrecision(3);
  return value === 0 ? '0' : value.toExponential(2);
}

/** Seconds with a unit, e.g. `0.281 s`. */
export function seconds(value: number): string {
  return `${formatNumber(value)} s`;
}

/** A ratio, e.g. `1.13×`. */
export function ratio(value: number): string {
  return `${formatNumber(value)}×`;
}
