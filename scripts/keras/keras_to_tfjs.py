"""Converts a Keras model file (.keras of Keras 3, or .h5 of Keras 2/3) to tfjs' layers format.

Usage: python scripts/keras/keras_to_tfjs.py <model.keras|model.h5> <out-dir>

Loads the model with Keras itself (any backend; the project's .venv uses torch), then writes
<out-dir>/model.json (a Keras-2-style topology, which tfjs-layers reads) and
<out-dir>/weights.bin (float32, in the order of the manifest, named <layer>/<weight>).
Called by loadModelFile() (src/experiment/model-file.ts), which caches the result by the
content hash of the model file. Exit status 3 and a one-line message on stderr for a model
that tfjs cannot rebuild (an unsupported layer), 1 for a file Keras cannot load.
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

# Keras-3-only settings that tfjs-layers does not know (dropped when they hold their default).
DROP = {
    "module",
    "registered_name",
    "build_config",
    "compile_config",
    "lora_rank",
    "lora_alpha",
    "quantization_config",
    "synchronized",
    "optional",
    "sparse",
    "ragged",
    "build_input_shape",
}
SUPPORTED = {
    "InputLayer",
    "Conv1D",
    "Conv2D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "Dense",
    "BatchNormalization",
    "LayerNormalization",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Dropout",
    "SpatialDropout2D",
    "Flatten",
    "Reshape",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "Add",
    "Concatenate",
    "Multiply",
    "Average",
    "ZeroPadding2D",
    "Rescaling",
}


class Unsupported(Exception):
    pass


def clean(value):
    """Keras 3 config values in the Keras 2 form tfjs reads: dtype policies become 'float32',
    serialized objects lose their module and registered name."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy" or value.get("class_name") == "FloatDTypePolicy":
            return value.get("config", {}).get("name", "float32")
        return {k: clean(v) for k, v in value.items() if k not in DROP}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def layer_config(layer_conf):
    class_name = layer_conf["class_name"]
    if class_name not in SUPPORTED:
        raise Unsupported(
            f"layer '{layer_conf['config'].get('name')}' is a {class_name}, which the import does "
            f"not support (supported: {', '.join(sorted(SUPPORTED))})"
        )
    config = clean(layer_conf["config"])
    if class_name == "InputLayer":
        shape = config.pop("batch_shape", None) or config.pop("batch_input_shape")
        config["batch_input_shape"] = shape
    if config.get("groups", 1) == 1:
        config.pop("groups", None)
    for key in list(config):  # the weights are loaded; tfjs' defaults serve for the rest
        if key.endswith(("_initializer", "_regularizer", "_constraint")):
            del config[key]
    return {"class_name": class_name, "config": config}


def history(arg, out):
    """The Keras tensors of a Keras 3 node's call arguments, as Keras 2 inbound entries."""
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        layer, node, index = arg["config"]["keras_history"]
        out.append([layer, node, index, {}])
    elif isinstance(arg, (list, tuple)):
        for a in arg:
            history(a, out)
    return out


def inbound(nodes):
    result = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3
            result.append(history(node.get("args", []), []))
        else:  # Keras 2
            result.append(node)
    return result


def topology(model):
    config = model.get_config()
    if isinstance(model, keras.Sequential):
        layers = [layer_config(c) for c in config["layers"]]
        if layers and layers[0]["class_name"] == "InputLayer":
            first = layers.pop(0)["config"]
            if layers:
                layers[0]["config"]["batch_input_shape"] = first["batch_input_shape"]
        return {"class_name": "Sequential", "config": {"name": config["name"], "layers": layers}}
    layers = []
    for c in config["layers"]:
        converted = layer_config(c)
        converted["name"] = c["name"]
        converted["inbound_nodes"] = inbound(c.get("inbound_nodes", []))
        layers.append(converted)

    def ends(value):
        value = value if isinstance(value[0], list) else [value]
        return [list(v) for v in value]

    return {
        "class_name": "Model",
        "config": {
            "name": config["name"],
            "layers": layers,
            "input_layers": ends(config["input_layers"]),
            "output_layers": ends(config["output_layers"]),
        },
    }


def convert(source, out):
    model = keras.saving.load_model(source, compile=False)
    import numpy as np

    specs, chunks = [], []
    for layer in model.layers:
        for weight in layer.weights:
            value = np.asarray(keras.ops.convert_to_numpy(weight), dtype="<f4")
            short = weight.name.split("/")[-1].split(":")[0]
            specs.append({"name": f"{layer.name}/{short}", "shape": list(value.shape), "dtype": "float32"})
            chunks.append(value.tobytes())
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        f.write(b"".join(chunks))
    model_json = {
        "format": "layers-model",
        "generatedBy": f"keras v{keras.__version__}",
        "convertedBy": "tfjs-antifragile scripts/keras/keras_to_tfjs.py",
        "modelTopology": topology(model) | {"keras_version": "2.15.0", "backend": "tensorflow"},
        "weightsManifest": [{"paths": ["weights.bin"], "weights": specs}],
    }
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(model_json, f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    import keras

    try:
        convert(sys.argv[1], sys.argv[2])
    except Unsupported as err:
        print(str(err), file=sys.stderr)
        sys.exit(3)
    except Exception as err:  # a file Keras cannot load
        print(f"Keras cannot load it: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        sys.exit(1)
