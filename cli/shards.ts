/**
 * Sharded analysis from the command line: `analyze … --shard i/n` (or `--shards n` with
 * JOB_COMPLETION_INDEX) computes one shard and writes its partial; `merge` combines the
 * partials (folders, files or an MLflow run) into the usual analyze run folder; `shards init`
 * creates the MLflow parent run up front. See MERGE_HELP and SHARDS_HELP.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'util';
import { analyze } from '../src/analysis/analyze';
import {
  mergeShards,
  parseShardId,
  shardOptions,
  shardPlan,
  shardWork,
  ShardMergeError,
  type ShardId,
  type ShardPartial,
} from '../src/analysis/shards';
import { analysisCsv } from '../callbacks/mlflow-records';
import { dataHash, modelHash, shardKey } from '../src/experiment/fingerprint';
import {
  downloadPartials,
  partialName,
  PENDING_UPLOAD_FILE,
  recordPendingUpload,
  sendPartial,
  shardParentRun,
} from '../src/experiment/shard-tracking';
import { RunFolder } from '../src/experiment/run-folder';
import { ModelFileError } from '../src/experiment/model-file';
import { DatasetError } from '../datasets';
import { MlflowClient } from '../src/mlflow';
import { writeAnalysisReport } from '../src/report/analysis-report';
import { InputError, FLAGS, prepare, type Prepared, type Values } from './analyze';
import { EXIT, type CliIo } from './main';
import { isSweepShardFolder, mergeSweep } from './sweep-shards';

const EXPERIMENT = 'tfjs-antifragile';

export const MERGE_HELP = `Usage: tfjs-antifragile merge <shard folder|partial file>... --out <dir>
       tfjs-antifragile merge --mlflow-run <run id> --out <dir>
       tfjs-antifragile merge <reproduce-shard-<i>-of-<n> folder>... --out <dir>

Combines the partials of 'analyze … --shard i/n' into one analysis, identical to the unsharded
run's, and writes <dir>/<model>-merged-<time>/: analysis.json, labels.csv, run.json,
report.html (with --mlflow-run, uploaded to that run under merged/ too). Partials come from shard folders (each holding shard-<i>-of-<n>.json), partial
files, or the artifacts of an MLflow parent run (MLFLOW_TRACKING_URI). Missing, duplicated or
mismatched shards (another model, data, options or shard count) are refused: exit 2, nothing
written.

The folders of 'npm run reproduce -- --shard i/n' (sweep shards, each holding sweep-shard.json)
merge into <dir>/reproduce-merged-<time>/: the unsharded run's results.json, results.md and
compare.html (with MLFLOW_TRACKING_URI, logged to the sweep's parent run, which then ends).`;

export const SHARDS_HELP = `Usage: tfjs-antifragile shards init <model> --data <spec> --shards <n> [analyze options]
       tfjs-antifragile shards upload <shard folder>... [--mlflow-wait <s>]

init: creates (or finds) the MLflow parent run that the shards of this analysis upload their
partials to, and prints its id. Optional: the first shard creates it when absent.
upload: sends the partials that a shard could not send while MLflow was unreachable (its
folder holds ${PENDING_UPLOAD_FILE}), retrying for up to --mlflow-wait seconds (default 600).
Both need MLFLOW_TRACKING_URI.`;

/** The shard asked for: --shard i/n, or --shards n with JOB_COMPLETION_INDEX; else undefined. */
export function shardArgument(values: Values): ShardId | undefined {
  try {
    if (values.shard !== undefined) {
      if (values.shards !== undefined) {
        throw new Error('give --shard i/n or --shards n (with JOB_COMPLETION_INDEX), not both');
      }
      return parseShardId(values.shard);
    }
    if (values.shards === undefined) return undefined;
    const index = process.env.JOB_COMPLETION_INDEX;
    if (index === undefined || !/^\d+$/.test(index)) {
      throw new Error(
        `--shards ${values.shards} takes the shard index from JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job); got ${index === undefined ? 'none' : `'${index}'`}; or give --shard i/n`,
      );
    }
    return parseShardId(`${index}/${values.shards}`);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
}

/** The partial of a prepared analysis, without results yet. */
function emptyPartial(prep: Prepared, modelArg: string, values: Values, shard: ShardId) {
  const plan = shardPlan(prep.loaded.model, prep.options);
  const partial: ShardPartial = {
    kind: 'tfjs-antifragile/analysis-shard',
    version: 1,
    shard,
    fingerprint: {
      model: modelHash(prep.loaded.model),
      data: dataHash(prep.data.xs, prep.data.ys),
      options: shardOptions(prep.loaded.model, prep.options),
    },
    plan: plan.map(({ parameter, filter }) => ({ parameter, filter })),
    work: shardWork(plan, shard),
    report: null,
    inputs: { model: modelArg, name: prep.loaded.name, data: values.data! },
  };
  return partial;
}

async function parentRun(partial: ShardPartial, name: string): Promise<string> {
  const client = new MlflowClient();
  const key = shardKey(partial.fingerprint, partial.shard.count);
  return shardParentRun(client, EXPERIMENT, key, `${name}-shards-${partial.shard.count}`);
}

/** Default of --mlflow-wait: how long a shard retries an unreachable MLflow server, in s. */
const MLFLOW_WAIT_S = 600;

function mlflowWaitMs(values: Values): number {
  const text = values['mlflow-wait'] ?? String(MLFLOW_WAIT_S);
  const seconds = Number(text);
  if (!(seconds >= 0)) {
    throw new InputError(`--mlflow-wait: expected seconds ≥ 0; got '${text}'`);
  }
  return seconds * 1000;
}

/** One try per attempt: sendPartial's own loop does the retrying, with growing pauses. */
const sendingClient = () => new MlflowClient({ retry: { maxRetries: 1, timeoutMs: 10_000 } });

/**
 * Sends a shard folder's partial to its MLflow parent run, through the pending-upload record
 * (written first, removed once sent), retrying while the server is unreachable. Returns
 * whether the server has it.
 */
async function sendShardFolder(folder: string, waitMs: number, io: CliIo): Promise<boolean> {
  const runId = await sendPartial(sendingClient(), folder, { waitMs, log: (l) => io.err(l) });
  if (runId) io.out(`MLflow parent run: ${runId}`);
  return runId !== undefined;
}

/** Computes one shard and writes its partial (atomically; a rerun replaces it). */
export async function runShard(
  prep: Prepared,
  modelArg: string,
  values: Values,
  io: CliIo,
  shard: ShardId,
): Promise<number> {
  const name = prep.loaded.name.replace(/[^\w.-]+/g, '_');
  mlflowWaitMs(values); // a bad --mlflow-wait fails before the work
  const folder = new RunFolder(
    path.resolve(values.out ?? 'runs', `${name}-shard-${shard.index}-of-${shard.count}`),
  );
  fs.mkdirSync(folder.dir, { recursive: true });
  const started = Date.now();
  try {
    const partial = emptyPartial(prep, modelArg, values, shard);
    if (partial.work.length > 0) {
      partial.report = await analyze(prep.loaded.model, prep.data, {
        ...prep.options,
        work: partial.work,
      });
    }
    const file = partialName(shard.index, shard.count);
    folder.writeJson(file, partial);
    io.out(
      `shard ${shard.index}/${shard.count}: ${partial.work.length} of ${partial.plan.length} sweeps in ${((Date.now() - started) / 1000).toFixed(1)} s: ${path.join(folder.dir, file)}`,
    );
    if (process.env.MLFLOW_TRACKING_URI) {
      recordPendingUpload(folder.dir, {
        partial: file,
        experiment: EXPERIMENT,
        key: shardKey(partial.fingerprint, shard.count),
        runName: `${name}-shards-${shard.count}`,
        trackingUri: process.env.MLFLOW_TRACKING_URI,
        since: new Date().toISOString(),
      });
      if (!(await sendShardFolder(folder.dir, mlflowWaitMs(values), io))) return EXIT.failed;
    }
    return EXIT.ok;
  } catch (err) {
    io.err(`analyze shard ${shard.index}/${shard.count} failed: ${(err as Error).message}`);
    return EXIT.failed;
  } finally {
    prep.data.xs.dispose();
    prep.data.ys.dispose();
    prep.loaded.model.dispose();
  }
}

/** The partial files a merge argument names: a file, or the shard-*-of-*.json in a folder. */
function partialFiles(arg: string): string[] {
  if (!fs.existsSync(arg)) throw new InputError(`${arg}: no such shard folder or partial file`);
  if (!fs.statSync(arg).isDirectory()) return [arg];
  const files = fs.readdirSync(arg).filter((f) => /^shard-\d+-of-\d+\.json$/.test(f));
  if (files.length !== 1) {
    throw new InputError(
      `${arg}: a shard folder holds one shard-<i>-of-<n>.json; found ${files.length ? files.join(', ') : 'none'}`,
    );
  }
  return [path.join(arg, files[0])];
}

function parsePartial(source: string, text: string): { source: string; partial: ShardPartial } {
  try {
    return { source, partial: JSON.parse(text) as ShardPartial };
  } catch (err) {
    throw new InputError(`${source} is not valid JSON (${(err as Error).message})`);
  }
}

async function readPartials(values: { 'mlflow-run'?: string }, positionals: string[]) {
  if (values['mlflow-run'] !== undefined) {
    if (positionals.length)
      throw new InputError('give shard folders/files or --mlflow-run, not both');
    if (!process.env.MLFLOW_TRACKING_URI) {
      throw new InputError('--mlflow-run needs MLFLOW_TRACKING_URI (the tracking server)');
    }
    const texts = await downloadPartials(new MlflowClient(), values['mlflow-run']);
    if (texts.length === 0) {
      throw new InputError(`MLflow run ${values['mlflow-run']} holds no shards/ partials`);
    }
    return texts.map((t) => parsePartial(t.source, t.text));
  }
  if (positionals.length === 0)
    throw new InputError('give shard folders, partial files or --mlflow-run <id>');
  return positionals.flatMap(partialFiles).map((f) => parsePartial(f, fs.readFileSync(f, 'utf8')));
}

/** `tfjs-antifragile merge`: partials in, one analyze run folder out. */
export async function mergeCommand(args: string[], io: CliIo): Promise<number> {
  const started = new Date();
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        help: { type: 'boolean', short: 'h' },
        out: { type: 'string' },
        'mlflow-run': { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.values.help) {
      io.out(MERGE_HELP);
      return EXIT.ok;
    }
  } catch (err) {
    io.err(`merge: ${(err as Error).message}\n\n${MERGE_HELP}`);
    return EXIT.usage;
  }
  const folders = parsed.positionals;
  if (folders.length > 0 && folders.some(isSweepShardFolder)) {
    return mergeSweep(folders, parsed.values.out, io);
  }
  let partials;
  let report;
  try {
    partials = await readPartials(parsed.values, parsed.positionals);
    report = mergeShards(partials);
  } catch (err) {
    if (err instanceof InputError || err instanceof ShardMergeError) {
      io.err(err.message.startsWith('merge:') ? err.message : `merge: ${err.message}`);
      return EXIT.usage;
    }
    io.err(`merge failed: ${(err as Error).message}`);
    return EXIT.failed;
  }
  const first = partials[0].partial;
  const name = String(first.inputs?.name ?? 'analysis').replace(/[^\w.-]+/g, '_');
  const folder = RunFolder.create(parsed.values.out ?? 'runs', `${name}-merged`, started);
  folder.writeJson('analysis.json', report);
  folder.write('labels.csv', analysisCsv(report));
  folder.writeJson('run.json', {
    id: folder.id,
    command: 'merge',
    status: 'finished',
    created: started.toISOString(),
    updated: new Date().toISOString(),
    backend: report.backend,
    inputs: {
      ...first.inputs,
      modelSha256: first.fingerprint.model,
      dataSha256: first.fingerprint.data,
    },
    shards: partials.map((p) => p.source),
    ...(parsed.values['mlflow-run'] ? { mlflowRun: parsed.values['mlflow-run'] } : {}),
    timings: { merge: (Date.now() - started.getTime()) / 1000, slowestShard: report.seconds },
  });
  await writeAnalysisReport(folder.dir);
  const runId = parsed.values['mlflow-run'];
  if (runId) await uploadMerged(runId, folder.dir, io);
  io.out(
    `merged ${partials.length} shards: ${path.relative(process.cwd(), folder.dir) || folder.dir}`,
  );
  return EXIT.ok;
}

/** Uploads the merged files to the parent run under `merged/`; a failure only warns. */
async function uploadMerged(runId: string, dir: string, io: CliIo): Promise<void> {
  const client = new MlflowClient();
  try {
    for (const file of ['analysis.json', 'labels.csv', 'report.html']) {
      await client.logArtifact(
        runId,
        `merged/${file}`,
        new Uint8Array(fs.readFileSync(path.join(dir, file))),
      );
    }
    io.out(`MLflow: merged/analysis.json, labels.csv, report.html uploaded to run ${runId}`);
  } catch (err) {
    io.err(
      `MLflow: could not upload the merged files to run ${runId} (${(err as Error).message}); the run folder has them`,
    );
  }
}

/** `tfjs-antifragile shards init`: find or create the MLflow parent run; print its id. */
export async function shardsCommand(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === undefined || verb === '--help' || verb === '-h') {
    io.out(SHARDS_HELP);
    return verb ? EXIT.ok : EXIT.usage;
  }
  if (verb === 'upload') return uploadCommand(rest, io);
  let prep: Prepared | undefined;
  try {
    if (verb !== 'init')
      throw new InputError(`unknown verb '${verb}'; use: shards init, shards upload`);
    if (!process.env.MLFLOW_TRACKING_URI)
      throw new InputError('shards init needs MLFLOW_TRACKING_URI');
    const { values, positionals } = parseArgs({
      args: rest,
      options: FLAGS,
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length !== 1)
      throw new InputError(`shards init takes one model; got ${positionals.length}`);
    if (values.shards === undefined) throw new InputError('shards init needs --shards <n>');
    const shard = parseShardId(`0/${values.shards}`);
    prep = await prepare(positionals[0], values);
    const partial = emptyPartial(prep, positionals[0], values, shard);
    io.out(await parentRun(partial, prep.loaded.name.replace(/[^\w.-]+/g, '_')));
    return EXIT.ok;
  } catch (err) {
    const usage =
      err instanceof InputError ||
      err instanceof ModelFileError ||
      err instanceof DatasetError ||
      (err as Error).message.startsWith('shard:');
    io.err(`shards: ${(err as Error).message}${usage ? `\n\n${SHARDS_HELP}` : ''}`);
    return usage ? EXIT.usage : EXIT.failed;
  } finally {
    if (prep) {
      tf.dispose([prep.data.xs, prep.data.ys]);
      prep.loaded.model.dispose();
    }
  }
}

/** `tfjs-antifragile shards upload <folder>…`: sends the partials still pending in shard folders. */
async function uploadCommand(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { 'mlflow-wait': { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
    if (!process.env.MLFLOW_TRACKING_URI)
      throw new InputError('shards upload needs MLFLOW_TRACKING_URI');
    if (positionals.length === 0) throw new InputError('shards upload takes shard folders');
    const waitMs = mlflowWaitMs(values as Values);
    const pending = positionals.filter((f) => fs.existsSync(path.join(f, PENDING_UPLOAD_FILE)));
    for (const f of positionals.filter((f) => !pending.includes(f))) {
      io.out(`${f}: nothing pending (no ${PENDING_UPLOAD_FILE})`);
    }
    let sent = 0;
    for (const folder of pending) if (await sendShardFolder(folder, waitMs, io)) sent++;
    io.out(`shards upload: ${sent} of ${pending.length} pending partial(s) sent`);
    return sent === pending.length ? EXIT.ok : EXIT.failed;
  } catch (err) {
    const usage = err instanceof InputError || err instanceof TypeError;
    io.err(`shards upload: ${(err as Error).message}${usage ? `\n\n${SHARDS_HELP}` : ''}`);
    return usage ? EXIT.usage : EXIT.failed;
  }
}
