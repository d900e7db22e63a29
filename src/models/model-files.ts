import * as tf from '@tensorflow/tfjs';

/** A model as the two files of tfjs' layers format: `model.json` and its weights file. */
export interface ModelFiles {
  /** The content of `model.json` (topology, training config, weights manifest). */
  modelJson: Record<string, unknown>;
  /** The content of the weights file that `modelJson`'s manifest names. */
  weights: ArrayBuffer;
}

/**
 * Serialises a model to tfjs' layers format in memory (no file:// handler needed, so it works on
 * every backend): `tf.loadLayersModel` reads the result back.
 */
export async function serializeModel(
  model: tf.LayersModel,
  weightsFile = 'weights.bin',
): Promise<ModelFiles> {
  let files: ModelFiles | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      files = {
        modelJson: {
          modelTopology: artifacts.modelTopology,
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          convertedBy: artifacts.convertedBy,
          trainingConfig: artifacts.trainingConfig,
          userDefinedMetadata: artifacts.userDefinedMetadata,
          weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs ?? [] }],
        },
        weights: artifacts.weightData
          ? tf.io.CompositeArrayBuffer.join(artifacts.weightData)
          : new ArrayBuffer(0),
      };
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (!files) throw new Error(`model '${model.name}' could not be serialised`);
  return files;
}
