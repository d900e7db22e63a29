/**
 * A selector of panes that works without scripts (report.html loads none): one radio input per
 * pane, labels grouped in rows, and CSS rules, scoped to the selector's id, that show the pane
 * whose input is checked (the shared CSS is in html.ts' page style). Keyboard and screen readers
 * use the radio inputs as usual.
 */
import { escapeHtml } from './html';

/** One pane: its key (unique in the selector), the text of its label, and its HTML. */
export interface Pane {
  key: string;
  label: string;
  html: string;
}

/** A row of labels: its title and its panes. */
export interface PaneGroup {
  title: string;
  panes: Pane[];
}

/** A CSS-safe id part for `key`. */
function slug(key: string): string {
  return key.replace(/[^A-Za-z0-9_-]/g, '_');
}

/**
 * The selector's HTML: `<div class="panes-selector" id=id>` with its rules, inputs, labels and
 * panes; `checked` is the key of the pane shown first (default: the first pane).
 */
export function paneSelector(id: string, groups: readonly PaneGroup[], checked?: string): string {
  const panes = groups.flatMap((g) => g.panes);
  if (panes.length === 0) return '';
  const first = panes.some((p) => p.key === checked) ? checked : panes[0].key;
  const inputId = (key: string) => `${id}-${slug(key)}`;
  const rules = panes
    .map((p) => {
      const i = inputId(p.key);
      return (
        `#${i}:checked ~ .panes > #pane-${i} { display: block; }\n` +
        `#${i}:checked ~ .choices label[for="${i}"] { background: #222; color: white; }`
      );
    })
    .join('\n');
  const inputs = panes
    .map(
      (p) =>
        `<input type="radio" class="pane-choice" name="${id}" id="${inputId(p.key)}"` +
        `${p.key === first ? ' checked' : ''} aria-label="${escapeHtml(p.label)}">`,
    )
    .join('');
  const choices = groups
    .filter((g) => g.panes.length > 0)
    .map(
      (g) =>
        `<div class="choice-row"><span class="choice-title">${escapeHtml(g.title)}</span>` +
        g.panes
          .map((p) => `<label for="${inputId(p.key)}">${escapeHtml(p.label)}</label>`)
          .join('') +
        '</div>',
    )
    .join('');
  const body = panes
    .map((p) => `<div class="pane" id="pane-${inputId(p.key)}">${p.html}</div>`)
    .join('\n');
  return (
    `<div class="panes-selector" id="${id}"><style>${rules}</style>${inputs}` +
    `<div class="choices">${choices}</div><div class="panes">\n${body}\n</div></div>`
  );
}
