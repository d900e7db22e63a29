/**
 * MLflow as the meeting point of a sharded analysis: one parent run per analysis, found by a
 * tag derived from its fingerprint (so every shard finds the same one without talking to the
 * others), the shards' partials as its artifacts under `shards/`.
 */
import type { ShardPartial } from '../analysis/shards';
import { MlflowClient } from '../mlflow';

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
