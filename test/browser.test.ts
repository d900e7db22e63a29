/**
 * The browser build in real Chromium (Debian's, driven by playwright-core): the demo page
 * (`npm run demo`) trains with both callbacks on wasm (and on webgl where headless Chromium has
 * one), with no console error and no request outside the local server; and the library bundle's
 * analysis on fixed weights and data agrees with Node's. Screenshots go to test-output/.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { analyze, smallCnn, type AnalysisReport, type AnalyzeOptions } from '../index';
import { digitsBinary, startDemoServer, type DemoServer } from '../cli/demo';
import { MNIST_MEAN, MNIST_STD } from '../datasets/mnist-stats';
import { main, type CliIo } from '../cli/main';

/** The page's DOM as far as the functions run in it use it (this project compiles without DOM types). */
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelectorAll(selector: string): { length: number };
};

const OUTPUT = path.join(__dirname, '..', 'test-output');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

interface PageRun {
  state: string;
  error?: string;
  reports: number;
  frozenLayers: string[];
  backend?: string;
  numTensors: number[];
  charts: number;
  frozenItems: number;
  /** The parameters the page's first report analysed. */
  parameters: string[];
}

interface Watched {
  errors: string[];
  outside: string[];
}

function watch(page: Page, server: DemoServer): Watched {
  const watched: Watched = { errors: [], outside: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') watched.errors.push(m.text());
  });
  page.on('pageerror', (e) => watched.errors.push(String(e)));
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(server.url) && !url.startsWith('blob:') && !url.startsWith('data:')) {
      watched.outside.push(url);
    }
  });
  return watched;
}

interface RunOptions {
  /** How long the page may take to finish (ms); default 100 s. */
  timeout?: number;
  /** Click the download button and save the file here. */
  download?: string;
}

/** Opens the demo with `query`, waits for done/error, returns what the page shows. */
async function runDemo(
  browser: Browser,
  server: DemoServer,
  query: string,
  shot: string,
  options: RunOptions = {},
) {
  const page = await browser.newPage({
    viewport: { width: 1300, height: 1000 },
    acceptDownloads: true,
  });
  const watched = watch(page, server);
  await page.goto(`${server.url}${query}`);
  await page.waitForFunction(
    () => ['done', 'error'].includes(document.body.dataset.state ?? ''),
    null,
    { timeout: options.timeout ?? 100_000 },
  );
  if (options.download !== undefined) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    await download.saveAs(options.download);
  }
  const result: PageRun = await page.evaluate(() => {
    const state = (globalThis as unknown as { antifragile: Record<string, unknown> }).antifragile;
    return {
      state: document.body.dataset.state ?? '',
      error: document.body.dataset.error,
      reports: (state.reports as unknown[]).length,
      frozenLayers: state.frozenLayers as string[],
      backend: state.backend as string | undefined,
      numTensors: state.numTensors as number[],
      charts: document.querySelectorAll('figure[data-chart] svg').length,
      frozenItems: document.querySelectorAll('#frozen li').length,
      parameters: ((state.reports as AnalysisReport[])[0]?.parameters ?? []).map((p) => p.name),
    };
  });
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, shot), fullPage: true });
  await page.close();
  return { ...result, ...watched };
}

/** Why webgl cannot be tested in this Chromium (no WebGL, or the page dies using it), if so. */
async function webglMissing(browser: Browser, server: DemoServer): Promise<string | undefined> {
  const page = await browser.newPage();
  try {
    await page.goto(`${server.url}lib.html`);
    await page.waitForFunction(() => document.body.dataset.state === 'done');
    return await page.evaluate(async () => {
      const lib = (globalThis as unknown as { tfjsAntifragile: typeof import('../browser') })
        .tfjsAntifragile;
      const tfp = (globalThis as unknown as { tf: typeof import('@tensorflow/tfjs') }).tf;
      try {
        await lib.initBrowserBackend({ backend: 'webgl' });
        const conv = tfp.conv2d(
          tfp.ones([1, 8, 8, 1]) as import('@tensorflow/tfjs').Tensor4D,
          tfp.ones([3, 3, 1, 4]) as import('@tensorflow/tfjs').Tensor4D,
          1,
          'same',
        );
        await conv.data();
        conv.dispose();
        return undefined;
      } catch (err) {
        return `headless Chromium has no usable WebGL: ${String(err)}`;
      }
    });
  } catch (err) {
    return `the page crashed using WebGL in headless Chromium: ${String(err).split('\n')[0]}`;
  } finally {
    await page.close().catch(() => undefined);
  }
}

/** The first `n` served digits, normalised as the page does, as plain arrays. */
function servedDigits(n: number): { xs: number[]; labels: number[] } {
  const bin = digitsBinary(n);
  const pixels = new Uint16Array(bin.buffer, bin.byteOffset + 4, n * 784);
  const xs = Array.from(pixels, (v) => Math.fround((v / 1000 - MNIST_MEAN) / MNIST_STD));
  const labels = Array.from(bin.subarray(4 + n * 784 * 2, 4 + n * 784 * 2 + n));
  return { xs, labels };
}

const ANALYSIS: AnalyzeOptions = { epsilon: 0.1, steps: 3, filters: ['lowpass', 'highpass'] };

/** The smallest demo run with 2 analyses (the page's URL overrides, demo/query.ts). */
const WEBGL_QUERY = '?epochs=2&backend=webgl&train=100&examples=10&steps=3&filters=lowpass';

/**
 * `tfjs-antifragile report <file>` on the page's download: the same AnalysisReport contract, so
 * the HTML report shows both epochs (as recorded: 1 and 2) and the page's parameters.
 */
async function expectReportOfDownload(file: string, parameters: string[]): Promise<void> {
  const reports = JSON.parse(fs.readFileSync(file, 'utf8')) as AnalysisReport[];
  expect(reports.map((r) => r.epoch)).toEqual([1, 2]);
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (t) => out.push(t), err: (t) => err.push(t) };
  expect([await main(['report', file], io), err]).toEqual([0, []]);
  const html = fs.readFileSync(file.replace(/\.json$/, '.html'), 'utf8');
  expect(out).toEqual([file.replace(/\.json$/, '.html')]);
  expect(html).toContain("X-axis titled 'epoch' for a discrete scale with 2 values: 1, 2");
  expect(parameters.length).toBeGreaterThan(0);
  for (const name of parameters) expect(html).toContain(`<td>${name}</td>`);
}

/** The analysis reference tolerances: α, removed counts, accuracies, labels near τ. */
function expectSameReport(browser: AnalysisReport, node: AnalysisReport, examples: number): void {
  const tau = node.options.tolerance;
  const oneExample = 1 / examples + 1e-9;
  expect(Math.abs(browser.reference.clean - node.reference.clean)).toBeLessThanOrEqual(oneExample);
  expect(browser.parameters.map((p) => p.name)).toEqual(node.parameters.map((p) => p.name));
  node.parameters.forEach((np, i) => {
    const bp = browser.parameters[i];
    for (const [filter, nr] of Object.entries(np.filters)) {
      const br = bp.filters[filter as keyof typeof bp.filters];
      expect(br).toBeDefined();
      if (!nr || !br) continue;
      nr.steps.forEach((ns, s) => {
        const bs = br.steps[s];
        expect(Math.abs(bs.alpha - ns.alpha)).toBeLessThanOrEqual(
          1e-6 * Math.max(1, Math.abs(ns.alpha)),
        );
        expect(bs.removed).toBe(ns.removed);
        expect(Math.abs(bs.clean - ns.clean)).toBeLessThanOrEqual(oneExample);
        expect(Math.abs(bs.adversarial - ns.adversarial)).toBeLessThanOrEqual(oneExample);
      });
      for (const score of ['clean', 'adversarial', 'difference'] as const) {
        if (br.labels[score] !== nr.labels[score]) {
          const where = `${np.name} ${filter} ${score}: ${nr.scores[score]} vs τ ${tau}`;
          expect([where, Math.abs(Math.abs(nr.scores[score]) - tau) < 1e-5]).toEqual([where, true]);
        }
      }
    }
  });
}

describe('in the browser', () => {
  let browser: Browser;
  let server: DemoServer;

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`,
      );
    }
    server = await startDemoServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('the demo trains 2 epochs on wasm with both callbacks: 2 analyses, label grid, frozen list, flat numTensors', async () => {
    const download = path.join(OUTPUT, 'browser-demo-reports.json');
    fs.rmSync(download, { force: true });
    const run = await runDemo(browser, server, '?epochs=2&backend=wasm', 'browser-demo-wasm.png', {
      download,
    });
    expect(run.errors).toEqual([]);
    expect(run.outside).toEqual([]);
    expect([run.state, run.error]).toEqual(['done', undefined]);
    expect(run.backend).toBe('wasm');
    expect(run.reports).toBe(2);
    expect(run.charts).toBe(4);
    expect(run.frozenItems).toBeGreaterThan(0);
    expect(run.numTensors).toHaveLength(2);
    expect(run.numTensors[1]).toBe(run.numTensors[0]);
    await expectReportOfDownload(download, run.parameters);
  });

  // Headless Chromium's WebGL is SwiftShader (software) here: each analysis pays for compiling
  // its shaders, so this run is as small as the URL allows (100 digits, 1 filter × 3 steps on
  // 10 digits). TEST_WEBGL=0 skips it.
  const webglIt = process.env.TEST_WEBGL === '0' ? it.skip : it;
  webglIt(
    'the demo trains 2 epochs on webgl where headless Chromium has it (SwiftShader counts)',
    async () => {
      const missing = await webglMissing(browser, server);
      if (missing !== undefined) {
        console.warn(`webgl demo test skipped: ${missing}`);
        return;
      }
      const run = await runDemo(browser, server, WEBGL_QUERY, 'browser-demo-webgl.png', {
        timeout: 280_000,
      });
      expect(run.errors).toEqual([]);
      expect(run.outside).toEqual([]);
      expect([run.state, run.error]).toEqual(['done', undefined]);
      expect(run.backend).toBe('webgl');
      expect(run.reports).toBe(2);
      expect(run.charts).toBe(4);
      expect(run.numTensors).toHaveLength(2);
      expect(run.numTensors[1]).toBe(run.numTensors[0]);
    },
    300_000,
  );

  it('the ?backend= and ?epochs= parameters are checked, with the value in the error', async () => {
    const run = await runDemo(browser, server, '?backend=metal', 'browser-demo-bad-backend.png');
    expect(run.state).toBe('error');
    expect(run.error).toMatch(/\?backend= must be one of webgl, wasm, cpu; got 'metal'/);
  });

  it("the library bundle's AnalysisReport on wasm equals Node's for the same weights and data", async () => {
    const examples = 30;
    const { xs, labels } = servedDigits(examples);
    const model = smallCnn({ seed: 0 });
    const weights = model
      .getWeights()
      .map((w) => ({ shape: w.shape, values: Array.from(w.dataSync()) }));
    const data = tf.tidy(() => ({
      xs: tf.tensor4d(xs, [examples, 28, 28, 1]),
      ys: tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat(),
    }));
    const node = await analyze(model, data, ANALYSIS);
    tf.dispose([data.xs, data.ys]);
    model.dispose();

    const page = await browser.newPage();
    const watched = watch(page, server);
    await page.goto(`${server.url}lib.html`);
    await page.waitForFunction(() => document.body.dataset.state === 'done');
    const inBrowser = await page.evaluate(
      async ({ weights, xs, labels, options }) => {
        type Lib = typeof import('../browser');
        const lib = (globalThis as unknown as { tfjsAntifragile: Lib }).tfjsAntifragile;
        const tfp = (globalThis as unknown as { tf: typeof import('@tensorflow/tfjs') }).tf;
        await lib.initBrowserBackend({ backend: 'wasm', wasmPaths: '/vendor/wasm/' });
        const m = lib.smallCnn({ seed: 0 });
        m.setWeights(weights.map((w) => tfp.tensor(w.values, w.shape)));
        const x = tfp.tensor4d(xs, [labels.length, 28, 28, 1]);
        const y = tfp.oneHot(tfp.tensor1d(labels, 'int32'), 10).toFloat();
        return lib.analyze(m, { xs: x, ys: y }, options);
      },
      { weights, xs, labels, options: ANALYSIS },
    );
    await page.close();
    expect(watched.outside).toEqual([]);
    expect(inBrowser.backend).toBe('wasm');
    expectSameReport(inBrowser, node, examples);
  });
});
