/**
 * MLflow as the meeting point of a sharded analysis: one parent run per analysis, found by a
 * tag derived from its fingerprint (so every shard finds the same one without talking to the
 * others), the shards' partials as its artifacts under `shards/`.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ShardPartial } from '../analysis/shards';
import { MlflowClient, MlflowUnavailableError } from '../mlflow';

/** The tag that identifies a sharded analysis' parent run. */
export const SHARD_KEY_TAG = 'tfjs_antifragile.shard_key';
/** Where the partials go among the parent run's artifacts. */
export const SHARD_ARTIFACT_DIR = 'shards';

/** The artifact (or file) name of shard `index` of `count`. */
export function partialName(index: number, count: number): string {
  return `shard-${index}-of-${count}.json`;
}

async function oldestWithKey(client: MlflowClient, experimentId: string, key: string) {
  const { runs } = await client.searchRuns({
    experimentIds: [experimentId],
    filter: `tags.\`${SHARD_KEY_TAG}\` = '${key}'`,
    orderBy: ['attributes.start_time ASC'],
  });
  // Same start time: the smaller run id wins, so every shard picks the same run.
  runs.sort(
    (a, b) => a.info.startTime - b.info.startTime || a.info.runId.localeCompare(b.info.runId),
  );
  return runs[0]?.info.runId;
}

/**
 * The parent run of the sharded analysis `key`, created when there is none. Race-free: a shard
 * that finds none creates one, then searches again and takes the oldest; a run it created
 * that lost the race is deleted-marked (tag `tfjs_antifragile.duplicate_of`) and ended.
 */
export async function shardParentRun(
  client: MlflowClient,
  experimentName: string,
  key: string,
  runName: string,
  source = 'tfjs-antifragile analyze --shard',
): Promise<string> {
  const experiment = await client.getOrCreateExperiment(experimentName);
  const found = await oldestWithKey(client, experiment.experimentId, key);
  if (found) return found;
  const mine = await client.createRun({
    experimentId: experiment.experimentId,
    runName,
    tags: {
      [SHARD_KEY_TAG]: key,
      'mlflow.source.name': source,
      'mlflow.source.type': 'LOCAL',
    },
  });
  const winner = (await oldestWithKey(client, experiment.experimentId, key)) ?? mine.runId;
  if (winner !== mine.runId) {
    await client.setTag(mine.runId, 'tfjs_antifragile.duplicate_of', winner);
    await client.setTerminated(mine.runId, 'KILLED');
  }
  return winner;
}

/** Uploads a partial as `shards/shard-<i>-of-<n>.json` of the parent run (replacing a rerun's). */
export async function uploadPartial(
  client: MlflowClient,
  runId: string,
  partial: ShardPartial,
): Promise<void> {
  const name = partialName(partial.shard.index, partial.shard.count);
  await client.logArtifact(runId, `${SHARD_ARTIFACT_DIR}/${name}`, JSON.stringify(partial));
}

/** Every partial among a run's artifacts, each named by its artifact path. */
export async function downloadPartials(
  client: MlflowClient,
  runId: string,
): Promise<Array<{ source: string; text: string }>> {
  const files = await client.listArtifacts(runId, SHARD_ARTIFACT_DIR);
  const out = [];
  for (const f of files.filter((f) => !f.isDir && f.path.endsWith('.json'))) {
    const bytes = await client.downloadArtifact(runId, f.path);
    out.push({ source: `${runId}:${f.path}`, text: Buffer.from(bytes).toString('utf8') });
  }
  return out;
}

/**
 * The record of a partial not yet on the MLflow server, beside it in the shard folder: written
 * before the first try, removed once the server has the partial. `tfjs-antifragile shards
 * upload <folder>` sends what it names (as a shard's own retries do).
 */
export const PENDING_UPLOAD_FILE = 'mlflow-pending.json';

/** What {@link PENDING_UPLOAD_FILE} holds. */
export interface PendingUpload {
  /** The partial's file name in the same folder. */
  partial: string;
  experiment: string;
  key: string;
  runName: string;
  trackingUri: string;
  /** When the first try was made (ISO time). */
  since: string;
}

/** Options of {@link sendPartial}. */
export interface SendPartialOptions {
  /** How long to keep retrying while the server is unreachable, in ms. */
  waitMs: number;
  /** First pause between tries, in ms (doubles, up to 30 s). Default 1000. */
  pauseMs?: number;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends the partial of shard folder `folder` named by its {@link PENDING_UPLOAD_FILE} to its
 * parent run (found or created by its key), retrying with growing pauses while the server is
 * unreachable, for up to `waitMs`. Returns the parent run's id once sent (the record is then
 * removed), or undefined when the server stayed away (the record stays, the message says how
 * to send it later). Errors other than unavailability (a refusal) are thrown.
 */
export async function sendPartial(
  client: MlflowClient,
  folder: string,
  options: SendPartialOptions,
): Promise<string | undefined> {
  const record = path.join(folder, PENDING_UPLOAD_FILE);
  const pending = JSON.parse(fs.readFileSync(record, 'utf8')) as PendingUpload;
  const partial = JSON.parse(
    fs.readFileSync(path.join(folder, pending.partial), 'utf8'),
  ) as ShardPartial;
  const deadline = Date.now() + options.waitMs;
  let pause = options.pauseMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const runId = await shardParentRun(client, pending.experiment, pending.key, pending.runName);
      await uploadPartial(client, runId, partial);
      fs.rmSync(record, { force: true });
      if (attempt > 1) options.log(`MLflow: back; ${pending.partial} sent to run ${runId}`);
      return runId;
    } catch (err) {
      if (!(err instanceof MlflowUnavailableError)) throw err;
      const left = deadline - Date.now();
      if (attempt === 1) {
        options.log(
          `MLflow unreachable at ${pending.trackingUri} (${err.lastFailure}): ${pending.partial} waits in ${folder} ` +
            `(${PENDING_UPLOAD_FILE}); retrying for up to ${Math.round(options.waitMs / 1000)} s`,
        );
      }
      if (left <= 0) {
        options.log(
          `MLflow: still unreachable after ${Math.round(options.waitMs / 1000)} s; ${pending.partial} is NOT on the server. ` +
            `It stays in ${folder}: send it with 'tfjs-antifragile shards upload ${folder}' once MLflow is back ` +
            '(or rerun the shard), or merge the shard folders without MLflow',
        );
        return undefined;
      }
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, 30_000);
    }
  }
}

/** Writes the {@link PENDING_UPLOAD_FILE} record of a partial about to be sent. */
export function recordPendingUpload(folder: string, pending: PendingUpload): void {
  const file = path.join(folder, PENDING_UPLOAD_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(pending, null, 2));
  fs.renameSync(tmp, file);
}
