import { LABEL_COLORS } from './charts';
import { renderSvg, type Chart } from './render';

/** Escapes text for HTML. */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A number for a table: fixed digits, `–` when missing. */
export function num(value: unknown, digits = 4): string {
  const n = typeof value === 'number' ? value : Number(value);
  return value === undefined || value === null || value === '' || !Number.isFinite(n)
    ? '–'
    : n.toFixed(digits);
}

/** A cell that shows a label in its colour. */
export function labelCell(label: string): string {
  return `<td class="label ${escapeHtml(label)}">${escapeHtml(label)}</td>`;
}

/** An HTML table; cells are already HTML (`<td>…</td>`) or plain text to escape. */
export function table(headers: string[], rows: Array<Array<string | { html: string }>>): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c) => (typeof c === 'string' ? `<td>${escapeHtml(c)}</td>` : c.html)).join('')}</tr>`,
    )
    .join('\n');
  const thead = headers.some((h) => h) ? `<thead><tr>${head}</tr></thead>` : '';
  return `<table${thead ? '' : ' class="facts"'}>${thead}<tbody>\n${body}\n</tbody></table>`;
}

/** A chart rendered to inline SVG inside a `<figure class="chart" data-chart=id>`. */
export async function figure(chart: Chart): Promise<string> {
  const svg = await renderSvg(chart.spec);
  return (
    `<figure class="chart" id="chart-${escapeHtml(chart.id)}" data-chart="${escapeHtml(chart.id)}">` +
    `<figcaption><strong>${escapeHtml(chart.title)}</strong>` +
    (chart.caption ? `<br><span class="caption">${escapeHtml(chart.caption)}</span>` : '') +
    `</figcaption>${svg}</figure>`
  );
}

const STYLE = `
body { font-family: Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; } .meta { color: #555; } .caption { color: #666; font-weight: normal; font-size: 0.85rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
td.label { color: white; text-align: center; } table.facts td { text-align: left; }
${Object.entries(LABEL_COLORS)
  .map(([label, color]) => `td.label.${label} { background: ${color}; }`)
  .join('\n')}
figure.chart { margin: 1rem 0; overflow-x: auto; } figure.chart svg { display: block; max-width: none; }
nav a { margin-right: 1rem; } .good { color: #2ca02c; } .bad { color: #d62728; }
pre { background: #f7f7f7; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; white-space: pre-wrap; overflow-wrap: anywhere; }
table.facts td { overflow-wrap: anywhere; } table.facts td:last-child { max-width: 60rem; }
.panes-selector > .pane-choice { position: absolute; opacity: 0; pointer-events: none; }
.panes-selector .pane { display: none; }
.choices { margin: 0.5rem 0; font-size: 0.85rem; }
.choice-row { margin: 0.2rem 0; } .choice-title { display: inline-block; min-width: 11rem; color: #555; }
.choices label { display: inline-block; cursor: pointer; border: 1px solid #bbb; border-radius: 3px; padding: 0.1rem 0.45rem; margin: 0.1rem 0.2rem 0.1rem 0; }
.pane-choice:focus-visible ~ .choices { outline: 2px solid #0072b2; }
`;

/** A complete, self-contained HTML page (inline CSS and SVG; no scripts, no external files). */
export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}
