/**
 * `loadModelFile(pathOrUrl)`: a trained model from a file, for `analyze`. tfjs layers models
 * (`model.json` + weight shards, a path or an http(s):// / file:// URL) load directly; Keras
 * `.keras` (Keras 3) and `.h5` (Keras 2, Keras 3 legacy) files are converted by Keras itself,
 * run in the project's .venv (scripts/keras/keras_to_tfjs.py), and the conversion is cached by
 * the file's content hash. Formats without layer weights get a clear error.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GraphRunner } from '../analysis/graph';

/** A model file that cannot be loaded: missing, corrupt, or a format without layer weights. */
export class ModelFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFileError';
  }
}

/** Options of {@link loadModelFile}. */
export interface LoadModelFileOptions {
  /** Where converted Keras models are cached; default `$TFJS_ANTIFRAGILE_CACHE` or ~/.cache/tfjs-antifragile. */
  cacheDir?: string;
  /** The Python that runs Keras; default the project's `.venv/bin/python`. */
  python?: string;
}

/** A loaded model and where it came from. */
export interface LoadedModelFile {
  model: tf.LayersModel;
  /** `tfjs`, `keras` (.keras) or `h5`. */
  format: 'tfjs' | 'keras' | 'h5';
  /** The path or URL given. */
  source: string;
  /** A short name for run folders: the file name without extension (or the folder's). */
  name: string;
  /** sha256 of a Keras file (the cache key). */
  sha256?: string;
  /** Whether the model ends in softmax (`probabilities`) or outputs `logits`. */
  output: 'probabilities' | 'logits';
  /** Whether a Keras conversion came from the cache. */
  cached?: boolean;
}

const NO_LAYERS: Array<[RegExp, string]> = [
  [/\.tflite$/i, 'a TensorFlow Lite model'],
  [/\.onnx$/i, 'an ONNX model'],
  [/\.(pt|pth|ckpt|bin|safetensors)$/i, 'a PyTorch (or other framework) checkpoint'],
  [/\.pb$/i, 'a TensorFlow SavedModel/graph'],
];
const ADVICE =
  'The analysis ablates layer weights, so it needs a layers model: save the model from Keras as ' +
  '.keras or .h5 (or convert it with tensorflowjs_converter --output_format tfjs_layers_model)';

function projectRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

function rejectFormat(file: string, what: string): never {
  throw new ModelFileError(`${file} is ${what}, which has no layer weights to filter. ${ADVICE}.`);
}

/** Reads a tfjs layers `model.json` and its weight shards from disk (any backend). */
async function loadTfjsFile(file: string): Promise<tf.LayersModel> {
  let json: {
    format?: string;
    modelTopology?: Record<string, unknown>;
    weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  };
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelFileError(`${file} is not a readable model.json: ${(err as Error).message}`);
  }
  if (json.format === 'graph-model' || (json.modelTopology && 'node' in json.modelTopology)) {
    rejectFormat(file, 'a tfjs graph model');
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new ModelFileError(
      `${file} is not a tfjs layers model.json (no modelTopology/weightsManifest)`,
    );
  }
  const dir = path.dirname(file);
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const shard = path.join(dir, p);
      if (!fs.existsSync(shard))
        throw new ModelFileError(`${file}: weight file ${shard} is missing`);
      shards.push(fs.readFileSync(shard));
    }
  }
  const data = Buffer.concat(shards);
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      }),
    );
  } catch (err) {
    throw new ModelFileError(
      `${file} cannot be loaded as a tfjs layers model: ${(err as Error).message}`,
    );
  }
}

/** Converts a Keras file to tfjs format in the cache (once per content hash). */
function convertKeras(
  file: string,
  options: LoadModelFileOptions,
): { modelJson: string; sha256: string; cached: boolean } {
  const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const cacheRoot =
    options.cacheDir ??
    process.env.TFJS_ANTIFRAGILE_CACHE ??
    path.join(os.homedir(), '.cache', 'tfjs-antifragile');
  const target = path.join(cacheRoot, 'keras', sha256);
  const modelJson = path.join(target, 'model.json');
  if (fs.existsSync(modelJson)) return { modelJson, sha256, cached: true };
  const python = options.python ?? path.join(projectRoot(), '.venv', 'bin', 'python');
  if (!fs.existsSync(python)) {
    throw new ModelFileError(
      `${file}: importing Keras models needs Keras in the project's Python venv (${python} is missing); run 'node scripts/setup.js --keras'`,
    );
  }
  const temp = `${target}.tmp-${process.pid}`;
  fs.rmSync(temp, { recursive: true, force: true });
  const script = path.join(projectRoot(), 'scripts', 'keras', 'keras_to_tfjs.py');
  const result = spawnSync(python, [script, file, temp], {
    encoding: 'utf8',
    env: { ...process.env, KERAS_BACKEND: 'torch' },
  });
  if (result.status !== 0) {
    fs.rmSync(temp, { recursive: true, force: true });
    const why = (result.stderr || String(result.error ?? ''))
      .split('\n')
      .filter((l) => l.trim() && !/^WARNING|absl/.test(l))
      .pop();
    throw new ModelFileError(
      `${file} cannot be imported from Keras: ${why ?? `exit ${result.status}`}`,
    );
  }
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(temp, target);
  return { modelJson, sha256, cached: false };
}

function toPath(source: string): string {
  return source.startsWith('file://') ? decodeURIComponent(new URL(source).pathname) : source;
}

/**
 * Loads a model for analysis from a path or URL (see the module comment). Throws a
 * {@link ModelFileError} naming the file when it is missing, corrupt, or of a format that has
 * no layer weights (graph models, SavedModel, TFLite, ONNX, PyTorch).
 */
export async function loadModelFile(
  pathOrUrl: string,
  options: LoadModelFileOptions = {},
): Promise<LoadedModelFile> {
  const describe = (
    model: tf.LayersModel,
    rest: Omit<LoadedModelFile, 'model' | 'output' | 'source'>,
  ) => ({
    model,
    source: pathOrUrl,
    output: new GraphRunner(model).endsInSoftmax()
      ? ('probabilities' as const)
      : ('logits' as const),
    ...rest,
  });
  if (/^https?:\/\//.test(pathOrUrl)) {
    let model: tf.LayersModel;
    try {
      model = await tf.loadLayersModel(pathOrUrl);
    } catch (err) {
      throw new ModelFileError(
        `${pathOrUrl} cannot be loaded as a tfjs layers model: ${(err as Error).message}`,
      );
    }
    const name = path.basename(path.dirname(new URL(pathOrUrl).pathname)) || 'model';
    return describe(model, { format: 'tfjs', name });
  }
  let file = toPath(pathOrUrl);
  if (!fs.existsSync(file)) throw new ModelFileError(`model file ${file} does not exist`);
  if (fs.statSync(file).isDirectory()) {
    if (fs.existsSync(path.join(file, 'saved_model.pb')))
      rejectFormat(file, 'a TensorFlow SavedModel');
    if (!fs.existsSync(path.join(file, 'model.json'))) {
      throw new ModelFileError(
        `${file} is a folder without a model.json; give a model.json, .keras or .h5 file`,
      );
    }
    file = path.join(file, 'model.json');
  }
  for (const [pattern, what] of NO_LAYERS) if (pattern.test(file)) rejectFormat(file, what);
  const base = path.basename(file).replace(/\.[^.]+$/, '');
  if (/\.(keras|h5|hdf5)$/i.test(file)) {
    const { modelJson, sha256, cached } = convertKeras(file, options);
    const model = await loadTfjsFile(modelJson);
    return describe(model, {
      format: /\.keras$/i.test(file) ? 'keras' : 'h5',
      name: base,
      sha256,
      cached,
    });
  }
  if (!/\.json$/i.test(file)) {
    throw new ModelFileError(
      `${file}: unknown model format; give a tfjs model.json, a .keras or a .h5 file`,
    );
  }
  const name = base === 'model' ? path.basename(path.dirname(path.resolve(file))) : base;
  return describe(await loadTfjsFile(file), { format: 'tfjs', name });
}
