import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { serializeModel } from '../models/model-files';

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
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    fs.rmSync(old, { recursive: true, force: true });
  });
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
    fs.writeFileSync(path.join(tmp, CHECKPOINT_FILES.model), JSON.stringify(modelJson));
    fs.writeFileSync(path.join(tmp, CHECKPOINT_FILES.weights), Buffer.from(weights));
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
      fs.writeFileSync(path.join(tmp, CHECKPOINT_FILES.optimizer), JSON.stringify(json));
      fs.writeFileSync(
        path.join(tmp, CHECKPOINT_FILES.optimizerWeights),
        Buffer.from(encoded.data),
      );
    }
    fs.writeFileSync(path.join(tmp, CHECKPOINT_FILES.state), JSON.stringify(state));
  });
}

function readBuffer(file: string): ArrayBuffer {
  const bytes = fs.readFileSync(file);
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
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, CHECKPOINT_FILES.model), 'utf8')) as {
    weightsManifest: tf.io.WeightsManifestConfig;
  };
  const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const values = tf.io.decodeWeights(readBuffer(path.join(dir, CHECKPOINT_FILES.weights)), specs);
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
    const json = JSON.parse(fs.readFileSync(optimizerFile, 'utf8')) as OptimizerJson;
    if (json.className !== optimizer.getClassName()) {
      throw new Error(
        `checkpoint ${dir} holds a ${json.className} optimiser; the model is compiled with ${optimizer.getClassName()}`,
      );
    }
    const decoded = tf.io.decodeWeights(
      readBuffer(path.join(dir, CHECKPOINT_FILES.optimizerWeights)),
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
  return JSON.parse(fs.readFileSync(path.join(dir, CHECKPOINT_FILES.state), 'utf8')) as S;
}
