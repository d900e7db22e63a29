import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { serializeModel } from '../models/model-files';
import { killPoint } from './kill-points';
import { readJsonFile, type RunFolder, type RunManifest } from './run-folder';

/** Files of a checkpoint folder. */
export const CHECKPOINT_FILES = {
  model: 'model.json',
  weights: 'weights.bin',
  optimizer: 'optimizer.json',
  optimizerWeights: 'optimizer.bin',
  state: 'state.json',
} as const;

interface OptimizerJson {
  className: string;
  config: tf.serialization.ConfigDict;
  specs: tf.io.WeightsManifestEntry[];
  /** Optimiser scalars that `getWeights()` leaves out but bit-exact resumption needs. */
  scalars: Record<string, number[]>;
}

/**
 * Adam and Adamax keep running powers of β₁/β₂ as variables that `getWeights()` does not return;
 * `setWeights()` recomputes them with `pow`, which differs in the last bits from the product the
 * optimiser accumulates. We save and restore them to resume bit for bit.
 */
const OPTIMIZER_SCALARS = ['accBeta1', 'accBeta2'] as const;

function optimizerScalars(optimizer: tf.Optimizer): Map<string, tf.Variable> {
  const found = new Map<string, tf.Variable>();
  for (const key of OPTIMIZER_SCALARS) {
    const value = (optimizer as unknown as Record<string, unknown>)[key];
    if (value instanceof tf.Variable) found.set(key, value);
  }
  return found;
}

function writeAtomically(dir: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  return write(tmp).then(() => {
    const old = `${dir}.old`;
    fs.rmSync(old, { recursive: true, force: true });
    if (fs.existsSync(dir)) {
      fs.renameSync(dir, old);
      killPoint(`${dir}: the previous copy moved aside`);
    }
    fs.renameSync(tmp, dir);
    killPoint(`${dir}: in place`);
    fs.rmSync(old, { recursive: true, force: true });
  });
}

function writeFile(tmp: string, name: string, data: string | Uint8Array): void {
  fs.writeFileSync(path.join(tmp, name), data);
  killPoint(`${tmp}: ${name} written`);
}

/**
 * Saves a training checkpoint into `dir` (replaced atomically): the model as `model.json` +
 * `weights.bin` (tfjs' layers-model format, written through `tf.io.withSaveHandler`), the
 * optimiser's slot variables as `optimizer.json` + `optimizer.bin`, and `state` as `state.json`.
 */
export async function saveCheckpoint(
  dir: string,
  model: tf.LayersModel,
  state: unknown,
): Promise<void> {
  await writeAtomically(dir, async (tmp) => {
    const { modelJson, weights } = await serializeModel(model, CHECKPOINT_FILES.weights);
    // A checkpoint keeps no training config: the optimiser is restored from its own file.
    delete modelJson.trainingConfig;
    delete modelJson.userDefinedMetadata;
    writeFile(tmp, CHECKPOINT_FILES.model, JSON.stringify(modelJson));
    writeFile(tmp, CHECKPOINT_FILES.weights, Buffer.from(weights));
    const optimizer = model.optimizer;
    if (optimizer) {
      const named = await optimizer.getWeights();
      const encoded = await tf.io.encodeWeights(named);
      // getWeights() returns the slot variables themselves plus a new `iter` scalar: free that.
      tf.dispose(named.map((n) => n.tensor).filter((t) => !(t instanceof tf.Variable)));
      const scalars: Record<string, number[]> = {};
      for (const [key, variable] of optimizerScalars(optimizer)) {
        scalars[key] = Array.from(await variable.data());
      }
      const json: OptimizerJson = {
        className: optimizer.getClassName(),
        config: optimizer.getConfig(),
        specs: encoded.specs,
        scalars,
      };
      writeFile(tmp, CHECKPOINT_FILES.optimizer, JSON.stringify(json));
      writeFile(tmp, CHECKPOINT_FILES.optimizerWeights, Buffer.from(encoded.data));
    }
    writeFile(tmp, CHECKPOINT_FILES.state, JSON.stringify(state));
  });
}

/**
 * The bytes of a checkpoint's weights file, checked against its manifest: a truncated or
 * padded file is an error naming the file and both sizes.
 */
const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

function readWeights(file: string, specs: tf.io.WeightsManifestEntry[]): ArrayBuffer {
  const bytes = fs.readFileSync(file);
  const sizes = specs.map((s) =>
    s.quantization || !(s.dtype in BYTES_PER_ELEMENT)
      ? undefined
      : s.shape.reduce((n, d) => n * d, 1) * BYTES_PER_ELEMENT[s.dtype],
  );
  const expected = sizes.every((n) => n !== undefined)
    ? sizes.reduce((sum: number, n) => sum + (n as number), 0)
    : bytes.byteLength;
  if (bytes.byteLength !== expected) {
    throw new Error(
      `${file} holds ${bytes.byteLength} bytes; its manifest describes ${specs.length} weights ` +
        `of ${expected} bytes. The file is truncated or corrupt`,
    );
  }
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * Loads a checkpoint written by {@link saveCheckpoint} into a model built with the same
 * architecture (weights matched by name) and, when the checkpoint has one, into the model's
 * compiled optimiser (same class; slots in the order of the trained variables). Returns the
 * saved state.
 * @throws Error naming the checkpoint and the weight or optimiser that does not fit
 */
export async function loadCheckpoint<S>(dir: string, model: tf.LayersModel): Promise<S> {
  const modelFile = path.join(dir, CHECKPOINT_FILES.model);
  const modelJson = readJsonFile<{ weightsManifest?: tf.io.WeightsManifestConfig }>(
    modelFile,
    "a tfjs layers-model file with a 'weightsManifest'",
  );
  if (!Array.isArray(modelJson.weightsManifest)) {
    throw new Error(
      `${modelFile} has no 'weightsManifest' list; expected a tfjs layers-model file`,
    );
  }
  const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const values = tf.io.decodeWeights(
    readWeights(path.join(dir, CHECKPOINT_FILES.weights), specs),
    specs,
  );
  try {
    const missing = model.weights.filter((w) => !(w.originalName in values));
    if (missing.length) {
      throw new Error(
        `checkpoint ${dir} does not fit the model: it has no weight ${missing
          .slice(0, 3)
          .map((w) => `'${w.originalName}'`)
          .join(', ')}${missing.length > 3 ? ` (and ${missing.length - 3} more)` : ''}`,
      );
    }
    for (const w of model.weights) {
      const value = values[w.originalName];
      if (value.shape.join() !== w.shape.join()) {
        throw new Error(
          `checkpoint ${dir} does not fit the model: weight '${w.originalName}' has shape ` +
            `[${value.shape}] in the checkpoint, [${w.shape}] in the model`,
        );
      }
      w.write(value);
    }
  } finally {
    tf.dispose(Object.values(values));
  }
  const optimizerFile = path.join(dir, CHECKPOINT_FILES.optimizer);
  const optimizer = model.optimizer;
  if (optimizer && fs.existsSync(optimizerFile)) {
    const json = readJsonFile<OptimizerJson>(optimizerFile, 'the optimiser state of a checkpoint');
    if (json.className !== optimizer.getClassName()) {
      throw new Error(
        `checkpoint ${dir} holds a ${json.className} optimiser; the model is compiled with ${optimizer.getClassName()}`,
      );
    }
    const decoded = tf.io.decodeWeights(
      readWeights(path.join(dir, CHECKPOINT_FILES.optimizerWeights), json.specs),
      json.specs,
    );
    const named = json.specs.map((s) => ({ name: s.name, tensor: decoded[s.name] }));
    await optimizer.setWeights(named);
    // setWeights copies into new variables; the decoded tensors are ours to free.
    tf.dispose(Object.values(decoded));
    for (const [key, variable] of optimizerScalars(optimizer)) {
      const saved = json.scalars[key];
      if (saved) tf.tidy(() => variable.assign(tf.tensor(saved, variable.shape, variable.dtype)));
    }
  }
  return readJsonFile<S>(
    path.join(dir, CHECKPOINT_FILES.state),
    'the training state of a checkpoint',
  );
}

/**
 * Makes a new checkpoint the run's newest, in the order that keeps every instant on disk
 * resumable: write it (atomically) → point `run.json` at it → only then remove older ones of its
 * phase (`prune`). A crash at any point leaves `run.json` naming a complete checkpoint.
 */
export async function commitCheckpoint(
  folder: RunFolder,
  info: RunManifest,
  checkpoint: { phase: string; epoch: number },
  model: tf.LayersModel,
  state: unknown,
  prune: boolean,
): Promise<void> {
  const dir = folder.checkpointDir(checkpoint.phase, checkpoint.epoch);
  await saveCheckpoint(folder.file(dir), model, state);
  info.checkpoint = { ...checkpoint, dir };
  folder.writeInfo(info);
  if (prune) folder.pruneCheckpoints(checkpoint.phase, dir);
}
