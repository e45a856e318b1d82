"""Loss and accuracy of any classifier that outputs logits, from a Keras model, a `.keras` file or a SavedModel.

The training loop reports its final metrics through `evaluate_classifier` too, so `python -m tfregimes.evaluate`
on a run's export computes exactly what the run wrote to metrics.json.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

import tfregimes.models  # noqa: F401  (registers the zoo's custom layers, which `.keras` files name)
from tfregimes.training.export import (  # noqa: F401  (registers the layer)
    CorruptModelError,
    carried_normalization,
    split_input_normalization,
)

LogitsFn = Callable[[tf.Tensor], tf.Tensor]


class ModelLoadError(Exception):
    """A model path that holds neither a `.keras` file nor a SavedModel, or one that cannot be read."""


def normalization_to_load(path: str | os.PathLike, requested: str) -> str:
    """The normalization to load the data with for the model at `path`. A tfregimes export normalizes its
    inputs itself, so its data is loaded with `none`; `requested` (a `--normalization`) other than `auto` or
    the one the export carries is refused. Any other model gets `requested` (auto: the dataset's default)."""
    try:
        carried = carried_normalization(path)
    except CorruptModelError as error:
        raise ModelLoadError(str(error)) from None
    if carried is None:
        return requested
    if requested not in ("auto", carried):
        raise ModelLoadError(f"{path} carries normalization {carried}; --normalization={requested} contradicts "
                             "it. Drop --normalization: the model normalizes its inputs itself.")
    return "none"


def load_classifier(path: str | os.PathLike) -> LogitsFn:
    """A function images -> logits for a `.keras` file, a SavedModel directory, or a run's export/ directory."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model" / "saved_model.pb").exists():
        path = path / "saved_model"  # A run's export/ directory.
    if path.suffix == ".keras" and path.is_file():
        model = _load_keras_file(path)
        return lambda images: model(images, training=False)
    if path.is_dir() and (path / "saved_model.pb").exists():
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as error:  # noqa: BLE001  (a damaged protobuf or variables file: TF raises several kinds)
            raise ModelLoadError(f"{path} holds a SavedModel that cannot be read ({type(error).__name__}: "
                                 f"{_first_line(error)}); export or copy it again") from None
        if hasattr(loaded, "serve"):  # Keras' model.export endpoint.
            return lambda images: loaded.serve(images)  # The closure keeps `loaded`, and so its variables, alive.
        signature = loaded.signatures.get("serving_default")
        if signature is None:
            raise ModelLoadError(f"the SavedModel at {path} has neither a `serve` endpoint nor a serving_default "
                                 "signature; export it with Keras' model.export(path).")
        output_name = _single_output(signature)
        return lambda images: signature(images)[output_name]
    raise ModelLoadError(
        f"{path} is neither a .keras file nor a SavedModel directory (one with saved_model.pb). Pass a run's "
        "export/ directory, its export/model.keras, or any Keras model or SavedModel whose output is logits.")


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """The Keras model itself, which metrics that look at the weights need: a `.keras` file, or a run's export/
    directory (its model.keras). A bare SavedModel has no Keras model to rebuild and is refused."""
    path = Path(path)
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"  # A run's export/ directory.
    if path.suffix == ".keras" and path.is_file():
        return _load_keras_file(path)
    if path.is_dir() and (path / "saved_model.pb").exists():
        raise ModelLoadError(f"{path} is a SavedModel, which holds no Keras model to differentiate with respect "
                             "to its weights; pass a .keras file or a run's export/ directory (with model.keras).")
    raise ModelLoadError(f"{path} is neither a .keras file nor a directory holding model.keras.")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]


def _load_keras_file(path: Path) -> keras.Model:
    if not zipfile.is_zipfile(path):  # Keras would report a damaged zip as "File not found".
        raise ModelLoadError(f"{path} is not a readable .keras file (not a complete zip archive); it may be "
                             "truncated or damaged: copy or export it again")
    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as error:  # noqa: BLE001  (a damaged member, or a layer this code does not know)
        raise ModelLoadError(f"{path} is not a readable .keras file ({type(error).__name__}: "
                             f"{_first_line(error)})") from None


def check_classes(logits_fn: LogitsFn, data, split: str) -> str | None:
    """Refuses a model with fewer outputs than the dataset has classes (its loss would index past the logits);
    returns a note for one with more (the extra logits take part in the softmax), else None."""
    images, _ = next(iter(data.evaluation(split, 1)))
    outputs = int(logits_fn(images).shape[-1])
    classes = data.info.num_classes
    if outputs < classes:
        raise ModelLoadError(f"the model outputs {outputs} classes but {data.info.name} has {classes} (labels "
                             f"0..{classes - 1}); was it trained on another dataset?")
    if outputs > classes:
        return (f"note: the model outputs {outputs} classes, {data.info.name} has {classes}; the extra logits "
                "take part in the softmax (was it trained on another dataset?)")
    return None


def _single_output(signature) -> str:
    outputs = list(signature.structured_outputs)
    if len(outputs) != 1:
        raise ModelLoadError(f"the serving signature has outputs {outputs}; expected exactly one (the logits).")
    return outputs[0]


def evaluate_classifier(logits_fn: LogitsFn, dataset: tf.data.Dataset) -> dict[str, float]:
    """Mean softmax cross-entropy (from logits) and accuracy over every example of `dataset` (images, labels)."""
    return classifier_evaluation(logits_fn)(dataset)


def inference_evaluation(model: keras.Model) -> Callable[[tf.data.Dataset], dict[str, float]]:
    """The evaluation of `model` in inference mode (`training=False`: no dropout, batch norm's moving statistics)
    that metrics.json's final train_/test_ metrics and the stop check (tfregimes.training.target_stop) both use."""
    return classifier_evaluation(lambda images: model(images, training=False))


def classifier_evaluation(logits_fn: LogitsFn) -> Callable[[tf.data.Dataset], dict[str, float]]:
    """`evaluate_classifier` with `logits_fn` bound, its per-batch function traced once for every later call (a
    check that reruns it every few epochs would otherwise pay the tracing each time; a smaller last batch makes
    it trace once more, for any batch size)."""

    @tf.function(reduce_retracing=True)
    def batch_sums(images, labels):
        logits = tf.cast(logits_fn(images), tf.float32)
        labels = tf.cast(labels, tf.int32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float64)
        return tf.reduce_sum(tf.cast(losses, tf.float64)), tf.reduce_sum(correct), tf.shape(labels)[0]

    def evaluate(dataset: tf.data.Dataset) -> dict[str, float]:
        loss_sum, correct_sum, count = 0.0, 0.0, 0
        for images, labels in dataset:
            batch_loss, batch_correct, batch_count = batch_sums(images, labels)
            loss_sum += float(batch_loss)
            correct_sum += float(batch_correct)
            count += int(batch_count)
        if count == 0:
            raise ValueError("cannot evaluate on an empty dataset")
        return {"loss": loss_sum / count, "accuracy": correct_sum / count, "examples": count}

    return evaluate
