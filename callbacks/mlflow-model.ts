/**
 * How a trained model is logged to MLflow: tfjs' layers format (`model.json` + `weights.bin`,
 * which `tf.loadLayersModel` reads back) and an `MLmodel` file carrying the model's input and
 * output signature in MLflow's tensor-spec form, so MLflow's UI and `mlflow.models.Model.load`
 * see a model with its signature. The recipe runner (one per retraining arm) and
 * {@link MlflowCallback} log the same files.
 */
import type * as tf from '@tensorflow/tfjs';
import { serializeModel } from '../src/models/model-files';

/** One file to upload. */
export interface ArtifactFile {
  path: string;
  data: string | Uint8Array;
  contentType: string;
}

/** One tensor of an MLflow signature (`{"type": "tensor", "tensor-spec": …}`). */
interface TensorSpec {
  type: 'tensor';
  name: string;
  'tensor-spec': { dtype: string; shape: number[] };
}

const DTYPES: Record<string, string> = {
  float32: 'float32',
  int32: 'int32',
  bool: 'bool',
  string: 'str',
};

function tensorSpecs(
  tensors: readonly tf.SymbolicTensor[],
  names: readonly string[],
): TensorSpec[] {
  return tensors.map((t, i) => ({
    type: 'tensor',
    name: names[i] ?? t.name,
    // MLflow writes a variable dimension (the batch) as -1.
    'tensor-spec': { dtype: DTYPES[t.dtype] ?? t.dtype, shape: t.shape.map((d) => d ?? -1) },
  }));
}

/** The model's signature as MLflow writes it: JSON lists of tensor specs. */
export function modelSignature(model: tf.LayersModel): { inputs: string; outputs: string } {
  return {
    inputs: JSON.stringify(tensorSpecs(model.inputs, model.inputNames)),
    outputs: JSON.stringify(tensorSpecs(model.outputs, model.outputNames)),
  };
}

/** The `MLmodel` file (YAML; JSON strings are valid YAML scalars). */
export function mlmodelFile(model: tf.LayersModel, artifactPath: string): string {
  const signature = modelSignature(model);
  return [
    `artifact_path: ${artifactPath}`,
    'flavors:',
    '  tfjs:',
    '    format: layers-model',
    '    model_json: model.json',
    '    weights: weights.bin',
    '    load_with: tf.loadLayersModel',
    `model_uuid: ${JSON.stringify(model.name)}`,
    'signature:',
    `  inputs: ${JSON.stringify(signature.inputs)}`,
    `  outputs: ${JSON.stringify(signature.outputs)}`,
    '',
  ].join('\n');
}

/**
 * The files of a model under `artifactPath` (default `model`): `model.json`, `weights.bin`,
 * `MLmodel`.
 */
export async function modelArtifacts(
  model: tf.LayersModel,
  artifactPath = 'model',
): Promise<ArtifactFile[]> {
  const { modelJson, weights } = await serializeModel(model);
  return [
    {
      path: `${artifactPath}/model.json`,
      data: JSON.stringify(modelJson),
      contentType: 'application/json',
    },
    {
      path: `${artifactPath}/weights.bin`,
      data: new Uint8Array(weights),
      contentType: 'application/octet-stream',
    },
    {
      path: `${artifactPath}/MLmodel`,
      data: mlmodelFile(model, artifactPath),
      contentType: 'text/plain',
    },
  ];
}
