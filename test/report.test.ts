/**
 * report.html: built from a real (tiny) run, opened in headless Chromium (Debian's `chromium`,
 * driven by playwright-core): it loads with no console errors and no outside requests, and every
 * chart drew. Screenshots go to test-output/.
 */
import * as fs from 'fs';
import * as path from 'path';
import { chromium, type Browser } from 'playwright-core';
import { runRecipe } from '../src/experiment';
import { createProgress } from '../src/experiment/progress';
import { renderSvg, writeCompareReport, writeRunReport } from '../src/report';
import { tempRuns, tinyRecipe } from './recipes-helpers';

const OUTPUT = path.join(__dirname, '..', 'test-output');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DEFAULT_DESCRIPTION = (
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'recipes', 'default.json'), 'utf8')) as {
    description: string;
  }
).description;

interface ChartCheck {
  id: string;
  /** Shown now (a pane of a selector that is not chosen is hidden). */
  visible: boolean;
  width: number;
  height: number;
  marks: number;
}

async function openAndCheck(browser: Browser, file: string, screenshot: string) {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  const charts: ChartCheck[] = await page.$$eval('figure.chart', (figures) =>
    figures.map((f) => {
      const svg = f.querySelector('svg');
      const box = svg?.getBoundingClientRect();
      const visible = (box?.width ?? 0) > 0;
      // Vega draws marks as paths inside groups classed mark-<type>.
      const marks = svg ? svg.querySelectorAll('g[class^="mark-"] path').length : 0;
      // A hidden pane has no box: its size is the one Vega wrote on the SVG.
      const size = (attr: string) => Number(svg?.getAttribute(attr) ?? 0);
      return {
        id: f.getAttribute('data-chart') ?? '',
        visible,
        width: visible ? (box?.width ?? 0) : size('width'),
        height: visible ? (box?.height ?? 0) : size('height'),
        marks,
      };
    }),
  );
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, screenshot), fullPage: true });
  await page.close();
  return { errors, requests, charts };
}

/** The text drawn in each chart (axis titles, facet headers, legends, tick labels). */
async function chartTexts(browser: Browser, file: string): Promise<Record<string, string[]>> {
  const page = await browser.newPage();
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  const texts = await page.$$eval('figure.chart', (figures) =>
    Object.fromEntries(
      figures.map((f) => [
        f.getAttribute('data-chart') ?? '',
        [...f.querySelectorAll('svg text')].map((t) => (t.textContent ?? '').trim()),
      ]),
    ),
  );
  // The arm comparison, Ψ, frozen weights and layers alone, to look at (test-output/).
  for (const id of ['arm-gains', 'psi-adversarial', 'frozen-weights', 'frozen-layers']) {
    if ((await page.locator(`figure[data-chart="${id}"]`).count()) === 0) continue;
    await page.locator(`figure[data-chart="${id}"]`).screenshot({
      path: path.join(OUTPUT, `${id}.png`),
    });
  }
  await page.close();
  return texts;
}

describe('report.html', () => {
  let browser: Browser;
  let runDir: string;
  let otherDir: string;
  const out = tempRuns('report');

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`,
      );
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const progress = () => createProgress({ silent: true });
    // Three arms and two seeds, so that the arm chart has per-seed points and intervals.
    const arms = tinyRecipe({
      // The default recipe's long description: the report must wrap it.
      description: DEFAULT_DESCRIPTION,
      retraining: {
        enabled: true,
        epochs: 2,
        seeds: [5, 6],
        arms: ['normal', 'selective', 'random-freeze'],
      },
    });
    runDir = (
      await runRecipe(arms, { outDir: out, progress: progress(), reporter: writeRunReport })
    ).dir;
    otherDir = (
      await runRecipe(
        tinyRecipe({
          name: 'tiny-b',
          retraining: { enabled: false },
          analysis: { epsilon: 0.3, steps: 3, filters: ['lowpass', 'pulse'], examples: 60 },
        }),
        { outDir: out, progress: progress(), reporter: writeRunReport },
      )
    ).dir;
  }, 600_000); // two tiny runs: minutes on a loaded machine

  afterAll(async () => {
    await browser?.close();
  });

  it('renders a vega-lite spec to SVG without a browser', async () => {
    const svg = await renderSvg({
      data: {
        values: [
          { a: 1, b: 2 },
          { a: 2, b: 3 },
        ],
      },
      mark: 'line',
      encoding: {
        x: { field: 'a', type: 'quantitative' },
        y: { field: 'b', type: 'quantitative' },
      },
    });
    expect(svg).toMatch(/^<svg[^>]*class="marks"/);
    expect(svg).toContain('mark-line');
  });

  it('is one self-contained file with every section, and every chart draws in Chromium', async () => {
    const file = path.join(runDir, 'report.html');
    expect(fs.existsSync(file)).toBe(true);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
    // which data the labels that decide freezing came from (tinyRecipe holds 60 out)
    expect(html).toContain(
      '60 of the 60 examples held out of the training data (dataset.validationSize); never the test set',
    );
    for (const heading of [
      'Training curves',
      'Test accuracy, clean and under FGSM',
      'Retraining arms against normal retraining',
      'Every arm against normal retraining',
      'Response curves',
      'Labels per parameter and epoch (train)',
      'Filtering scores',
      'Invariance',
      'Frozen layers over time',
    ]) {
      expect(html).toContain(heading);
    }
    const { errors, requests, charts } = await openAndCheck(browser, file, 'report.png');
    expect(errors).toEqual([]);
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    expect(charts.map((c) => c.id)).toEqual(
      expect.arrayContaining([
        'arm-gains',
        'comparison',
        'frozen-layers',
        'frozen-weights',
        'labels-selective-s5',
        'labels-train',
        'psi-adversarial',
        'test-accuracy',
        'training-curves',
      ]),
    );
    // Response curves of every analysed epoch of every analysed phase (train: 1, 2; the
    // selective branches: their start, inherited from training, and epoch 1; the last epoch of
    // a branch is not analysed), the newest training one shown first.
    const curves = charts.filter((c) => c.id.startsWith('response-curves-'));
    expect(curves.map((c) => c.id).sort()).toEqual(
      ['train-1', 'train-2', 'selective-s5-0', 'selective-s5-1', 'selective-s6-0', 'selective-s6-1']
        .map((k) => `response-curves-${k}`)
        .sort(),
    );
    expect(curves.filter((c) => c.visible).map((c) => c.id)).toEqual(['response-curves-train-2']);
    for (const chart of charts) {
      expect({
        id: chart.id,
        drew: chart.width > 50 && chart.height > 50 && chart.marks > 0,
      }).toEqual({
        id: chart.id,
        drew: true,
      });
    }
    // Every arm but normal, per seed, in three panels (clean, FGSM, PGD) on their own scales,
    // each mean with an interval (two seeds); the response curves say which line is which.
    const texts = await chartTexts(browser, file);
    expect(texts['arm-gains']).toEqual(
      expect.arrayContaining(['clean', 'FGSM', 'PGD', 'selective', 'random-freeze', 'seed 6']),
    );
    expect(texts['response-curves-train-2']).toEqual(
      expect.arrayContaining(['curve', 'clean', 'FGSM']),
    );
    // Ψ per parameter: every phase that was analysed, as a row of panels.
    expect(texts['psi-adversarial']).toEqual(
      expect.arrayContaining(['train', 'selective-s5', 'selective-s6', 'Ψ', 'start']),
    );
    // The fraction frozen: a panel per freezing arm, in percent.
    expect(texts['frozen-weights']).toEqual(
      expect.arrayContaining(['selective', 'random-freeze', 'weights frozen']),
    );
    const gains = charts.find((c) => c.id === 'arm-gains')!;
    // 2 arms × 3 panels × (2 seed points + 1 interval + 1 mean tick) + 3 zero lines
    expect(gains.marks).toBeGreaterThanOrEqual(2 * 3 * 4);
    // One response-curve line per (parameter, filter, curve): 4 kernels × 1 filter × 3 curves.
    const response = charts.find((c) => c.id === 'response-curves-train-2')!;
    expect(response.marks).toBeGreaterThanOrEqual(12);
  });

  it('switches response curves without a script; titles apart, descriptions wrapped', async () => {
    const file = path.join(runDir, 'report.html');
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    const shown = () =>
      page.$$eval('#response-curves figure.chart', (figures) =>
        figures.filter((f) => f.getBoundingClientRect().width > 0).map((f) => f.id),
      );
    expect(await shown()).toEqual(['chart-response-curves-train-2']);
    // The second selective branch's start: a label of the row 'selective-s6'.
    await page.click('label[for="response-curves-selective-s6-0"]');
    expect(await shown()).toEqual(['chart-response-curves-selective-s6-0']);
    await page.locator('#response-curves').screenshot({
      path: path.join(OUTPUT, 'response-curves-selector.png'),
    });
    // The frozen-layers panels' axis titles do not overlap one another.
    const boxes = await page.$$eval('figure[data-chart="frozen-layers"] svg text', (texts) =>
      texts
        .filter((t) => t.textContent === 'epoch')
        .map((t) => {
          const b = t.getBoundingClientRect();
          return [b.left, b.right, b.top, b.bottom];
        }),
    );
    expect(boxes.length).toBeGreaterThanOrEqual(3); // selective and random-freeze, 2 seeds
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i], boxes[j]];
        const overlap = a[0] < b[1] && b[0] < a[1] && a[2] < b[3] && b[2] < a[3];
        expect({ i, j, overlap }).toEqual({ i, j, overlap: false });
      }
    }
    // The long description wraps: the page is no wider than the window, the recipe block too.
    const widths = {
      page: await page.$eval('html', (h) => h.scrollWidth - h.clientWidth),
      pre: await page.$eval('#recipe pre', (pre) => pre.scrollWidth - pre.clientWidth),
    };
    expect(widths).toEqual({ page: 0, pre: 0 });
    expect(await page.textContent('table.facts')).toContain(DEFAULT_DESCRIPTION);
    await page.screenshot({ path: path.join(OUTPUT, 'report-top.png') });
    await page.close();
  });

  it('can be rewritten from the folder, and compare puts runs side by side', async () => {
    fs.rmSync(path.join(runDir, 'report.html'));
    await writeRunReport(runDir);
    expect(fs.existsSync(path.join(runDir, 'report.html'))).toBe(true);
    const page = path.join(out, 'compare.html');
    const runs = await writeCompareReport([runDir, otherDir], page);
    expect(runs.map((r) => r.recipe.name)).toEqual(['tiny', 'tiny-b']);
    const { errors, charts } = await openAndCheck(browser, page, 'compare.png');
    expect(errors).toEqual([]);
    expect(charts.map((c) => c.id)).toEqual([
      'runs-accuracy',
      'runs-labels',
      `comparison-${path.basename(runDir)}`,
    ]);
    for (const chart of charts) expect(chart.marks).toBeGreaterThan(0);
    const html = fs.readFileSync(page, 'utf8');
    expect(html).toContain('Invariance across runs');
    // What differs between the two recipes, per run; run names drawn whole, not cut short.
    expect(html).toContain('recipe differs in');
    for (const differs of ['name=tiny-b', 'retraining.enabled=false', 'analysis.filters=']) {
      expect(html).toContain(differs);
    }
    expect(html).not.toMatch(/[>; ]training\.epochs=/); // the same in both
    const texts = await chartTexts(browser, page);
    expect(texts['runs-accuracy']).toEqual(
      expect.arrayContaining([path.basename(runDir), path.basename(otherDir)]),
    );
  });
});
