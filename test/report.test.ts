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

interface ChartCheck {
  id: string;
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
      // Vega draws marks as paths inside groups classed mark-<type>.
      const marks = svg ? svg.querySelectorAll('g[class^="mark-"] path').length : 0;
      return {
        id: f.getAttribute('data-chart') ?? '',
        width: box?.width ?? 0,
        height: box?.height ?? 0,
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
  // The arm comparison and the response curves alone, to look at (test-output/).
  for (const id of ['arm-gains', 'response-curves']) {
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
  });

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
        'labels-selective-s5',
        'labels-train',
        'response-curves',
        'test-accuracy',
        'training-curves',
      ]),
    );
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
    expect(texts['response-curves']).toEqual(expect.arrayContaining(['curve', 'clean', 'FGSM']));
    const gains = charts.find((c) => c.id === 'arm-gains')!;
    // 2 arms × 3 panels × (2 seed points + 1 interval + 1 mean tick) + 3 zero lines
    expect(gains.marks).toBeGreaterThanOrEqual(2 * 3 * 4);
    // One response-curve line per (parameter, filter, curve): 4 kernels × 1 filter × 3 curves.
    const response = charts.find((c) => c.id === 'response-curves')!;
    expect(response.marks).toBeGreaterThanOrEqual(12);
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
