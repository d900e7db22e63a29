/**
 * One-way layers: a file may import its own layer and the layers below it, never a layer above
 * or a peer. docs/architecture.md explains each layer. Test and bench code may import anything.
 */
const LAYERS = [
  { name: 'util', rank: 0, dir: 'src/util' },
  { name: 'kernels', rank: 1, dir: 'src/kernels' },
  { name: 'models', rank: 2, dir: 'src/models' },
  { name: 'data', rank: 2, dir: 'datasets' },
  { name: 'mlflow', rank: 2, dir: 'src/mlflow' },
  { name: 'analysis', rank: 3, dir: 'src/analysis' },
  { name: 'callbacks', rank: 4, dir: 'callbacks' },
  { name: 'experiment', rank: 5, dir: 'src/experiment' },
  { name: 'report', rank: 6, dir: 'src/report' },
  { name: 'cli', rank: 7, dir: 'cli' },
  { name: 'demo', rank: 7, dir: 'demo' },
];

/** Packages only the experiment runner and above may load (the `.` entry must not). */
const UPPER_PACKAGES = ['vega', 'vega-lite', 'cli-progress'];
/** Node-only modules, kept out of what runs in a browser's `model.fit`. */
const NODE_MODULES = [
  'fs',
  'path',
  'os',
  'child_process',
  'worker_threads',
  'util',
  'http',
  'https',
];
const BROWSER_SAFE = ['util', 'models', 'analysis', 'callbacks', 'demo'];

/** A relative import that lands in `dir`, from any depth (`../x`, `../../src/x`). */
function intoDir(dir) {
  const last = dir.split('/').pop();
  const prefix = dir.startsWith('src/') ? '(src/)?' : '';
  return `^(\\.\\./)+${prefix}${last}(/|$)`;
}

function layerRule(layer, files, ignores, browserSafe) {
  const forbidden = LAYERS.filter(
    (other) => other.rank > layer.rank || (other.rank === layer.rank && other !== layer),
  );
  const paths = [];
  if (layer.rank < 5) {
    for (const name of UPPER_PACKAGES) {
      paths.push({ name, message: `${name} belongs to the experiment layer and above.` });
    }
  }
  if (browserSafe) {
    for (const name of NODE_MODULES) {
      paths.push({
        name,
        message: `the ${layer.name} layer runs in browsers: no Node-only '${name}'.`,
      });
    }
  }
  return {
    files,
    ignores,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths,
          patterns: forbidden.map((other) => ({
            regex: intoDir(other.dir),
            message: `layer '${layer.name}' may not import layer '${other.name}' (${other.dir}): imports go one way, ${LAYERS.map((l) => l.name).join(' → ')}.`,
          })),
        },
      ],
    },
  };
}

/** MLflow's callback spools to disk: it sits in the callbacks layer but may use Node. */
const NODE_CALLBACKS = 'callbacks/mlflow*.ts';

export function layerRules() {
  return LAYERS.flatMap((layer) => {
    const files = [`${layer.dir}/**/*.ts`];
    const browserSafe = BROWSER_SAFE.includes(layer.name);
    if (layer.name !== 'callbacks') return [layerRule(layer, files, [], browserSafe)];
    return [
      layerRule(layer, files, [NODE_CALLBACKS], browserSafe),
      layerRule(layer, [NODE_CALLBACKS], [], false),
    ];
  });
}
