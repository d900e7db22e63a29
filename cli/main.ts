#!/usr/bin/env node
/**
 * The command line: `tfjs-antifragile run | report | compare | sync | mlflow | schema | setup`,
 * with `--help` on each. `main(argv)` returns the exit code, so tests call it in-process.
 */
import { runServerGroup } from './mlflow-server';
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { ANALYZE_HELP, analyzeCommand } from './analyze';
import { MERGE_HELP, SHARDS_HELP, mergeCommand, shardsCommand } from './shards';
import { createProgress } from '../src/experiment/progress';
import { loadRecipe, RecipeError } from '../src/experiment/validate';
import { recipeSchemaJson } from '../src/experiment/schema';
import { RunFolder, RUN_FILES, timestamp } from '../src/experiment/run-folder';
import { runRecipe, type RunResult } from '../src/experiment/runner';
import { gainLines } from '../src/experiment/comparison';
import { syncSpools } from '../src/mlflow/sync';
import { writeRunReport } from '../src/report/run-report';
import { writeReportsFileReport } from '../src/report/reports-file';
import { runsSummaryRows, SUMMARY_HEADERS, writeCompareReport } from '../src/report/compare-report';
import { findProjectRoot, setupBackend } from './setup';

/** Where the CLI writes (injectable for tests). */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** The stream progress bars draw on; default `process.stderr`. */
  progressStream?: NodeJS.WritableStream;
  /** Draw bars (default: whether `progressStream` is a terminal). */
  tty?: boolean;
}

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

/** Exit codes. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A bad command line: the verb's help follows the message (exit 2). */
export class UsageError extends Error {}

const HELP: Record<string, string> = {
  get analyze() {
    return ANALYZE_HELP;
  },
  get merge() {
    return MERGE_HELP;
  },
  get shards() {
    return SHARDS_HELP;
  },
  main: `tfjs-antifragile — fragility, robustness and antifragility of TensorFlow.js models

Usage:
  tfjs-antifragile run <recipe.json> [--out runs/] [--set field=value]...
                                                       train, analyse, compare; writes runs/<run-id>/
  tfjs-antifragile run --resume <run-dir>              continue an interrupted run
  tfjs-antifragile analyze <model> --data <spec> [--epsilon x]...
                                                       analyse a tfjs/Keras model you already have
                                                       (--shard i/n: one shard of it)
  tfjs-antifragile merge <shard-dir>...|--mlflow-run <id> --out <dir>
                                                       combine shards into one analysis
  tfjs-antifragile shards init <model> --data <spec> --shards <n>
                                                       create the shards' MLflow parent run
  tfjs-antifragile report <run-dir>|<reports.json>     (re)write <run-dir>/report.html
  tfjs-antifragile compare <run-dir> <run-dir>...      put several runs side by side
  tfjs-antifragile sync <run-dir> [--timeout 60]       send what MLflow did not get (spools)
  tfjs-antifragile mlflow [--port 5000]                start a local MLflow server and UI
  tfjs-antifragile schema [--out recipes/schema.json]  write the recipe JSON schema
  tfjs-antifragile setup [--native | --wasm]           install a fast backend into your project

Run 'tfjs-antifragile <command> --help' for a command's options.
Set MLFLOW_TRACKING_URI to log runs to MLflow as well.`,
  run: `Usage: tfjs-antifragile run <recipe.json> [options]
       tfjs-antifragile run --resume <run-dir> [<recipe.json>]

Trains the recipe's model, runs the synaptic-filtering analysis at the chosen epochs and, when
the recipe asks, compares normal with selective retraining from the same checkpoint. The recipe
is validated first (against recipes/schema.json): every problem is listed, with its JSON path,
before anything runs.

Writes runs/<name>-<timestamp>/: recipe.json (resolved), run.json, metrics.csv/.json, analysis/,
labels.json/.csv, frozen.json, comparison.json, checkpoints/, report.html. Logs to MLflow too when
MLFLOW_TRACKING_URI is set.

Ctrl-C stops cleanly after the current epoch (press it twice to quit at once): the run folder
keeps everything up to the last finished epoch, the MLflow run is marked KILLED, exit code 130.
A folder is locked (run.lock) while a process runs it: a second --resume of it is refused.

Options:
  --out <dir>        parent folder of the run folder (default: runs)
  --set <f>=<v>      override a recipe field before validation, repeatable: a dotted path and a
                     JSON value (or plain text), e.g. --set training.seed=1
                     --set retraining.seeds=[1] --set analysis.steps=5
  --mlflow-parent <run-id>
                     nest the MLflow run under this MLflow run (e.g. one run per sweep)
  --resume <dir>     continue this run from its newest checkpoint; gives the same result as an
                     uninterrupted run (if a recipe is given too, it must match the run's)
  --no-report        do not write report.html
  --plain            plain progress lines even on a terminal
  -h, --help         this help`,
  report: `Usage: tfjs-antifragile report <run-dir>
       tfjs-antifragile report <reports.json>

(Re)writes <run-dir>/report.html from the run folder and prints its path (open it in a browser):
training curves, response curves, label heatmaps, score tables, invariance, frozen layers, every
retraining arm against normal. Works on unfinished runs too.
Given a JSON file of AnalysisReports (one or an array, e.g. the browser demo's download), writes
<reports>.html beside it: the analyses, the newest response curves and scores, the label grid.

Options:
  -h, --help         this help`,
  compare: `Usage: tfjs-antifragile compare <run-dir> <run-dir>... [--out compare.html]

Puts several runs side by side: a summary table on the terminal, and an HTML page with test
accuracy per run, label counts, invariance across runs and each run's retraining comparison.

Options:
  --out <file>       the HTML page (default: <parent of the first run>/compare-<timestamp>.html)
  -h, --help         this help`,
  sync: `Usage: tfjs-antifragile sync <run-dir> [--timeout <seconds>]

Sends to MLflow what a run could not send while the server was down, slow or failing: the
spools (mlflow-spool.jsonl) under <run-dir>/mlflow/ (or any folder given), parents before their
child runs, and ends each run (KILLED when the process that wrote it died before ending it), so
that no MLflow run stays RUNNING. Spools still in use by a running process are left alone.
Sends to MLFLOW_TRACKING_URI when set, else to the server each spool names.
Exit code: 0 everything sent (or nothing to send), 1 something was not sent, 2 bad usage.

Options:
  --timeout <s>      how long to keep trying each spool while the server does not answer
                     (default 60)
  -h, --help         this help`,
  mlflow: `Usage: tfjs-antifragile mlflow [--port 5000] [--host 127.0.0.1] [--store runs/mlflow]

Starts MLflow's tracking server and UI from the project's Python venv (.venv, made by
'node scripts/setup.js --mlflow'), with a SQLite store and an artifact folder under --store.
Then: export MLFLOW_TRACKING_URI=http://<host>:<port> and run recipes. Ctrl-C stops it, server
workers included (SIGTERM to its process group, SIGKILL after 3 s). 'npm run mlflow' runs this.

Options:
  --port <n>         port (default 5000)
  --host <addr>      address to listen on (default 127.0.0.1)
  --store <dir>      folder of mlflow.db and artifacts/ (default runs/mlflow)
  -h, --help         this help`,
  schema: `Usage: tfjs-antifragile schema [--out recipes/schema.json]

Writes the JSON schema of recipes (with descriptions and defaults), or prints it without --out.

Options:
  --out <file>       where to write it
  -h, --help         this help`,
  setup: `Usage: tfjs-antifragile setup [--native | --wasm]

Installs a fast tfjs backend into your project (the nearest folder with a package.json, from the
current folder up), where initBackend() picks it up; without it initBackend() falls back to tfjs'
pure-JS 'cpu' backend, hundreds of times slower for training.

  --native   (default) @tensorflow/tfjs-node, installed with npm (--ignore-scripts) if missing,
             then TensorFlow's C library from PyPI's tensorflow-cpu wheel (Linux x86-64; Python
             with pip; ~250 MB, downloaded once into ~/.cache/tfjs-antifragile) and its addon
             compiled with npm's node-gyp (a C++ compiler is needed; the build is cached too)
  --wasm     @tensorflow/tfjs-backend-wasm, installed with npm if missing (no compiler needed)

Ends by checking, in a fresh process, that initBackend() loads the backend.

Options:
  -h, --help         this help`,
};

function parse(
  args: string[],
  options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>,
): {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
} {
  try {
    return parseArgs({
      args,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** What `run` prints when a run ends: the retraining comparison, then `<status>: <run-dir>`. */
export function runResultLines(result: RunResult): string[] {
  const lines: string[] = [];
  if (result.comparison?.mean.selective) {
    const { mean, gain } = result.comparison;
    lines.push(
      `normal vs selective retraining (mean over ${result.comparison.seeds.length} seed(s)): ` +
        `clean ${mean.normal.clean.toFixed(4)} vs ${mean.selective.clean.toFixed(4)}, ` +
        `FGSM ${mean.normal.fgsm.toFixed(4)} vs ${mean.selective.fgsm.toFixed(4)}` +
        (mean.normal.pgd !== undefined && mean.selective.pgd !== undefined
          ? `, PGD ${mean.normal.pgd.toFixed(4)} vs ${mean.selective.pgd.toFixed(4)}`
          : '') +
        ` (selective − normal: FGSM ${gain.fgsm >= 0 ? '+' : ''}${gain.fgsm.toFixed(4)})`,
    );
  }
  if (result.comparison) lines.push(...gainLines(result.comparison));
  lines.push(`${result.status}: ${path.relative(process.cwd(), result.dir) || result.dir}`);
  return lines;
}

async function runCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    out: { type: 'string' },
    resume: { type: 'string' },
    set: { type: 'string', multiple: true },
    'mlflow-parent': { type: 'string' },
    'no-report': { type: 'boolean' },
    plain: { type: 'boolean' },
  });
  if (values.help) {
    io.out(HELP.run);
    return EXIT.ok;
  }
  if (positionals.length > 1)
    throw new UsageError(`run takes one recipe; got ${positionals.join(' ')}`);
  const resume = values.resume as string | undefined;
  if (!positionals[0] && !resume)
    throw new UsageError('run needs a recipe file (or --resume <run-dir>)');
  const overrides = (values.set as string[] | undefined) ?? [];
  if (resume && overrides.length > 0) {
    throw new UsageError(
      `--set cannot change a resumed run (its recipe is ${RUN_FILES.recipe} in ${resume}); start a new run instead`,
    );
  }
  let recipe;
  if (resume) {
    const folder = RunFolder.open(resume);
    recipe = loadRecipe(folder.file(RUN_FILES.recipe));
    if (positionals[0]) {
      const given = loadRecipe(positionals[0]);
      if (JSON.stringify(given) !== JSON.stringify(recipe)) {
        throw new UsageError(
          `${positionals[0]} differs from the recipe of ${resume} (${RUN_FILES.recipe}); ` +
            'a resumed run keeps its recipe: leave the recipe out, or start a new run',
        );
      }
    }
  } else {
    recipe = loadRecipe(positionals[0], overrides);
  }

  const progress = createProgress({
    stream: io.progressStream,
    tty: values.plain ? false : io.tty,
  });
  const controller = new AbortController();
  let presses = 0;
  const onSigint = () => {
    presses++;
    if (presses === 1) {
      progress.log('Ctrl-C: stopping after the current epoch (press Ctrl-C again to quit now)');
      controller.abort();
    } else {
      progress.close();
      io.err('interrupted');
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    const result = await runRecipe(recipe, {
      reporter: writeRunReport,
      outDir: values.out as string | undefined,
      resume,
      progress,
      signal: controller.signal,
      report: !values['no-report'],
      mlflowParentRunId: values['mlflow-parent'] as string | undefined,
    });
    for (const line of runResultLines(result)) io.out(line);
    return result.status === 'killed' ? EXIT.interrupted : EXIT.ok;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

async function reportCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {});
  if (values.help) {
    io.out(HELP.report);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError('report needs one run folder or JSON file');
  const target = positionals[0];
  const file =
    target.endsWith('.json') && fs.statSync(target, { throwIfNoEntry: false })?.isFile()
      ? await writeReportsFileReport(target)
      : await writeRunReport(target);
  io.out(file);
  return EXIT.ok;
}

function textTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * Writes the comparison page of `runs` to `out`; returns what `compare` prints: the summary table
 * and where the page is.
 */
export async function compareRuns(runs: string[], out: string): Promise<string[]> {
  const compared = await writeCompareReport(runs, out);
  return [
    textTable(SUMMARY_HEADERS, runsSummaryRows(compared)),
    `comparison page: ${path.relative(process.cwd(), out) || out}`,
  ];
}

async function compareCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { out: { type: 'string' } });
  if (values.help) {
    io.out(HELP.compare);
    return EXIT.ok;
  }
  if (positionals.length < 1) throw new UsageError('compare needs at least one run folder');
  const stamp = timestamp();
  const out =
    (values.out as string | undefined) ??
    path.join(path.dirname(path.resolve(positionals[0])), `compare-${stamp}.html`);
  for (const line of await compareRuns(positionals, out)) io.out(line);
  return EXIT.ok;
}

/** The project root: the folder above `cli/` (or above `dist/cli/` once compiled). */
function projectRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

async function mlflowCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    port: { type: 'string' },
    host: { type: 'string' },
    store: { type: 'string' },
  });
  if (values.help) {
    io.out(HELP.mlflow);
    return EXIT.ok;
  }
  const port = Number(values.port ?? 5000);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`--port must be an integer in 1–65535; got ${values.port}`);
  }
  const host = (values.host as string | undefined) ?? '127.0.0.1';
  const store = path.resolve((values.store as string | undefined) ?? path.join('runs', 'mlflow'));
  const bin = path.join(projectRoot(), '.venv', 'bin', 'mlflow');
  if (!fs.existsSync(bin)) {
    io.err(`${bin} is missing: run 'node scripts/setup.js --mlflow' first (or 'npm run mlflow')`);
    return EXIT.failed;
  }
  fs.mkdirSync(path.join(store, 'artifacts'), { recursive: true });
  const serverArgs = [
    'server',
    '--backend-store-uri',
    `sqlite:///${path.join(store, 'mlflow.db')}`,
    '--artifacts-destination',
    path.join(store, 'artifacts'),
    '--host',
    host,
    '--port',
    String(port),
  ];
  io.out(
    `MLflow UI and tracking server: http://${host}:${port} (store: ${store})\n` +
      `In another shell: export MLFLOW_TRACKING_URI=http://${host}:${port}\nCtrl-C stops it.`,
  );
  return runServerGroup(bin, serverArgs);
}

async function syncCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { timeout: { type: 'string' } });
  if (values.help) {
    io.out(HELP.sync);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(`sync needs one run folder; got ${positionals.length}`);
  }
  const dir = positionals[0];
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new UsageError(`${dir} is not a folder`);
  }
  const timeout = Number(values.timeout ?? 60);
  if (!Number.isFinite(timeout) || timeout < 0) {
    throw new UsageError(`--timeout must be a number of seconds ≥ 0; got ${values.timeout}`);
  }
  const results = await syncSpools(dir, { timeoutMs: timeout * 1000, log: (l) => io.out(l) });
  if (results.length === 0) {
    io.out(`nothing to send: no MLflow spool under ${dir}`);
    return EXIT.ok;
  }
  const failed = results.filter((r) => !r.done);
  io.out(
    failed.length === 0
      ? `sent: ${results.length} spool(s), every run ended`
      : `${failed.length} of ${results.length} spool(s) NOT sent; run sync again when the server answers`,
  );
  return failed.length === 0 ? EXIT.ok : EXIT.failed;
}

async function schemaCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { out: { type: 'string' } });
  if (values.help) {
    io.out(HELP.schema);
    return EXIT.ok;
  }
  const out = values.out as string | undefined;
  if (out) {
    fs.writeFileSync(out, recipeSchemaJson());
    io.out(`wrote ${out}`);
  } else {
    io.out(recipeSchemaJson());
  }
  return EXIT.ok;
}

async function setupCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    native: { type: 'boolean' },
    wasm: { type: 'boolean' },
  });
  if (values.help) {
    io.out(HELP.setup);
    return EXIT.ok;
  }
  if (positionals.length > 0)
    throw new UsageError(`setup takes no arguments; got ${positionals[0]}`);
  if (values.native && values.wasm) throw new UsageError('choose one of --native and --wasm');
  setupBackend(values.wasm ? 'wasm' : 'native', findProjectRoot(process.cwd()), projectRoot(), io);
  return EXIT.ok;
}

const COMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  run: runCommand,
  report: reportCommand,
  compare: compareCommand,
  sync: syncCommand,
  mlflow: mlflowCommand,
  schema: schemaCommand,
  setup: setupCommand,
  analyze: (args, io) => analyzeCommand(args, io),
  merge: (args, io) => mergeCommand(args, io),
  shards: (args, io) => shardsCommand(args, io),
};

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code: 0 done,
 * 1 failed, 2 bad usage or invalid recipe, 130 stopped by Ctrl-C.
 */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    io.out(HELP.main);
    return command ? EXIT.ok : EXIT.usage;
  }
  const handler = COMMANDS[command];
  if (!handler) {
    io.err(
      `unknown command '${command}'; use one of ${Object.keys(COMMANDS).join(', ')}\n\n${HELP.main}`,
    );
    return EXIT.usage;
  }
  try {
    return await handler(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${command}: ${err.message}\n\n${HELP[command]}`);
      return EXIT.usage;
    }
    if (err instanceof RecipeError) {
      io.err(err.message);
      return EXIT.usage;
    }
    io.err(`${command} failed: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT.failed;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(err);
      process.exitCode = EXIT.failed;
    },
  );
}
