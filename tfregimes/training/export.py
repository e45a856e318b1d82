"""Self-contained exports: the trained network behind a layer that applies the run's input normalization.

A run's `export/model.keras` and `export/saved_model/` take inputs as tfregimes' datasets yield them before
normalization (float32, uint8 pixels already divided by 255) and normalize them with the statistics of the run's
training split, so that `tf.saved_model.load(...).serve(x)` or `keras.saving.load_model(...)(x)` anywhere gives the
run's logits. The normalization is a standard Keras layer (`Normalization` with the run's mean and variance =
std², `Identity` for `none`), so that loading `model.keras` needs Keras alone, not tfregimes (of the zoo's networks,
those with a custom layer of their own still do); its name, `input_normalization_<name>`, says which normalization
it is. The SavedModel also records the normalization in `assets.extra/tfregimes.json` (a SavedModel's place for files
its graph does not read), so that `evaluate` knows not to normalize again and can refuse a `--normalization` that
contradicts it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfregimes.base.run_files import write_json
from tfregimes.data.normalization import NORMALIZATIONS, NormalizationStats

METADATA_FILE = Path("assets.extra") / "tfregimes.json"
LAYER_NAME = "input_normalization"  # The layer is named input_normalization_<normalization>.
_LAYER_CLASSES = ("Normalization", "Identity")  # Keras' class names of the layer, with statistics or without.


@dataclasses.dataclass(frozen=True, eq=False)
class CarriedNormalization:
    """The input normalization an export applies: its name and float32 statistics (None for `none`)."""

    normalization: str
    mean: np.ndarray | None
    std: np.ndarray | None

    def normalize_numpy(self, inputs: np.ndarray) -> np.ndarray:
        inputs = np.asarray(inputs, np.float32)
        return inputs if self.mean is None else (inputs - self.mean) / self.std

    def same_as(self, other: CarriedNormalization) -> bool:
        return (self.normalization == other.normalization
                and all(np.array_equal(a, b) if a is not None else b is None
                        for a, b in ((self.mean, other.mean), (self.std, other.std))))


def input_normalization_layer(normalization: str, stats: NormalizationStats | None) -> keras.layers.Layer:
    """(x − mean) / std in float32 whatever the precision policy, bitwise as the input pipeline computes it, from
    standard Keras layers. Keras' Normalization divides by max(√variance, 1e-7); with variance = fl(std²),
    √variance is std exactly (a correctly rounded square root of a binary float's square; std ≥ MIN_STD is far
    from underflow). It holds no variables (the statistics are constants of its config), so weight metrics and
    interpolation never see it."""
    name = f"{LAYER_NAME}_{normalization}"
    if stats is None:
        return keras.layers.Identity(name=name, dtype="float32")
    mean, std = np.asarray(stats.mean, np.float32), np.asarray(stats.std, np.float32)
    return keras.layers.Normalization(axis=tuple(range(-mean.ndim, 0)), mean=mean, variance=np.square(std),
                                      name=name, dtype="float32")


@keras.saving.register_keras_serializable(package="tfregimes")
class InputNormalization(keras.layers.Layer):
    """The normalization layer of exports written before `input_normalization_layer`, kept so that they load (in a
    process that imports tfregimes)."""

    def __init__(self, normalization: str, mean=None, std=None, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.normalization = normalization
        self.mean = None if mean is None else np.asarray(mean, np.float32)
        self.std = None if std is None else np.asarray(std, np.float32)

    def call(self, inputs):
        inputs = tf.cast(inputs, tf.float32)
        if self.mean is None:
            return inputs
        return (inputs - tf.constant(self.mean)) / tf.constant(self.std)

    def get_config(self):
        return {**super().get_config(), "normalization": self.normalization,
                "mean": None if self.mean is None else self.mean.tolist(),
                "std": None if self.std is None else self.std.tolist()}


def with_input_normalization(network: keras.Model, input_shape, normalization: str,
                             stats: NormalizationStats | None) -> keras.Model:
    """`network` behind the input normalization layer: a model of the inputs before normalization."""
    inputs = keras.Input(shape=tuple(input_shape), dtype="float32", name="inputs")
    layer = input_normalization_layer(normalization, stats)
    return keras.Model(inputs, network(layer(inputs)), name=f"{network.name}_exported")


def export_model(network: keras.Model, export_dir: str | os.PathLike, *, input_shape, normalization: str,
                 stats: NormalizationStats | None) -> None:
    """Writes `export_dir/saved_model/` (Keras `export`: a `serve` endpoint and serving_default signature, with
    the metadata file) and `export_dir/model.keras`, both taking inputs before normalization."""
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    model = with_input_normalization(network, input_shape, normalization, stats)
    model.export(str(export_dir / "saved_model"), format="tf_saved_model", verbose=False)
    write_json(export_dir / "saved_model" / METADATA_FILE,
               {"normalization": normalization,
                "inputs": "float32 as the dataset yields them before normalization (uint8 pixels divided by 255)"})
    model.save(str(export_dir / "model.keras"))


class CorruptModelError(ValueError):
    """A model file that cannot be read (a truncated or damaged `.keras` zip, unreadable metadata)."""


def carried_normalization(path: str | os.PathLike) -> str | None:
    """The normalization a model at `path` (a `.keras` file, a SavedModel, or a run's export/ directory)
    applies itself, or None for a model that carries none (not a tfregimes export)."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model").is_dir():
        path = path / "saved_model"  # A run's export/ directory: its SavedModel and model.keras carry the same.
    if path.is_dir():
        metadata = path / METADATA_FILE
        if not metadata.is_file():
            return None
        try:
            return json.loads(metadata.read_text())["normalization"]
        except (ValueError, KeyError) as error:
            raise CorruptModelError(f"{metadata} is damaged ({error}); export the model again") from None
    if path.suffix == ".keras" and path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
            raise CorruptModelError(f"{path} is not a readable .keras file ({error}); it may be truncated or "
                                    "damaged: copy or export it again") from None
        return _find_normalization(config)
    return None


def _find_normalization(config) -> str | None:
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict):
            found = _normalization_named(config.get("class_name"), inner.get("name"))
            if config.get("class_name") == "InputNormalization":
                found = inner.get("normalization")
            if found is not None:
                return found
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for value in values:
        found = _find_normalization(value)
        if found is not None:
            return found
    return None


def _normalization_named(class_name, layer_name) -> str | None:
    """The normalization of a layer that `input_normalization_layer` made, from its Keras class and name."""
    if class_name not in _LAYER_CLASSES or not isinstance(layer_name, str):
        return None
    normalization = layer_name.removeprefix(f"{LAYER_NAME}_")
    if normalization == layer_name or normalization not in NORMALIZATIONS:
        return None
    return normalization if (normalization == "none") == (class_name == "Identity") else None


def _carried_by(layer: keras.layers.Layer) -> CarriedNormalization | None:
    if isinstance(layer, InputNormalization):
        return CarriedNormalization(layer.normalization, layer.mean, layer.std)
    normalization = _normalization_named(type(layer).__name__, layer.name)
    if normalization is None or not isinstance(layer, (keras.layers.Normalization, keras.layers.Identity)):
        return None
    if isinstance(layer, keras.layers.Identity):
        return CarriedNormalization(normalization, None, None)
    config = layer.get_config()
    return CarriedNormalization(normalization, np.asarray(config["mean"], np.float32),
                                np.sqrt(np.asarray(config["variance"], np.float32)))


def split_input_normalization(model: keras.Model) -> tuple[keras.Model, CarriedNormalization | None]:
    """(the network behind the input normalization, the normalization) for an export; (model, None) for any other
    model. Metrics of the inputs (margins, robustness) and interpolation use the network on normalized inputs,
    exactly as during training."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if len(layers) == 2 and isinstance(layers[1], keras.Model):
        carried = _carried_by(layers[0])
        if carried is not None:
            return layers[1], carried
    return model, None
