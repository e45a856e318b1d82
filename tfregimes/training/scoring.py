"""Loss and accuracy of any classifier that outputs logits, from a Keras model, a `.keras` file or a SavedModel.

The training loop reports its final metrics through `evaluate_classifier` too, so `python -m tfregimes.evaluate`
on a run's export computes exactly what the run wrote to metrics.json.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

import tfregimes.models  # noqa: F401  (registers the zoo's custom layers, which `.keras` files name)
from tfregimes.training.distribution import all_workers_sum, worker_share
from tfregimes.training.export import (  # noqa: F401  (registers the layer)
    CorruptModelError,
    carried_normalization,
    split_input_normalization,
)
from tfregimes.training.saved_model_ops import dangerous_ops

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


class UntrustedModelError(ModelLoadError):
    """A SavedModel whose graph holds ops that reach outside the computation (files, Python, the network)."""


@dataclasses.dataclass(frozen=True)
class LoadedClassifier:
    """A function images -> logits, with the shape of one input example where the model declares it (None in a
    dimension it leaves open) and the object that must outlive the function (a SavedModel's signature holds only
    weak references to the variables of the loaded object: once that object is freed, calling it fails)."""

    logits: LogitsFn
    input_shape: tuple[int | None, ...] | None = None
    keep_alive: object = None

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        return self.logits(images)


def load_classifier(path: str | os.PathLike, *, trust_model: bool = False) -> LoadedClassifier:
    """The classifier of a `.keras` file, a SavedModel directory, or a run's export/ directory. A SavedModel runs
    the ops its graph holds, so one with ops that touch files, Python or the network (`saved_model_ops`) is refused
    unless `trust_model`; the check reads saved_model.pb and runs nothing."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model" / "saved_model.pb").exists():
        path = path / "saved_model"  # A run's export/ directory.
    if path.suffix == ".keras" and path.is_file():
        model = _load_keras_file(path)
        return LoadedClassifier(lambda images: model(images, training=False), _keras_input_shape(model))
    if path.is_dir() and (path / "saved_model.pb").exists():
        if not trust_model:
            _refuse_dangerous_ops(path)
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as error:  # noqa: BLE001  (a damaged protobuf or variables file: TF raises several kinds)
            raise ModelLoadError(f"{path} holds a SavedModel that cannot be read ({type(error).__name__}: "
                                 f"{_first_line(error)}); export or copy it again") from None
        signature = loaded.signatures.get("serving_default")
        input_shape = None if signature is None else _signature_input_shape(signature)
        if hasattr(loaded, "serve"):  # Keras' model.export endpoint.
            return LoadedClassifier(lambda images: loaded.serve(images), input_shape, loaded)
        if signature is None:
            raise ModelLoadError(f"the SavedModel at {path} has neither a `serve` endpoint nor a serving_default "
                                 "signature; export it with Keras' model.export(path).")
        output_name = _single_output(signature)
        return LoadedClassifier(lambda images: signature(images)[output_name], input_shape, loaded)
    raise ModelLoadError(
        f"{path} is neither a .keras file nor a SavedModel directory (one with saved_model.pb). Pass a run's "
        "export/ directory, its export/model.keras, or any Keras model or SavedModel whose output is logits.")


def _refuse_dangerous_ops(path: Path) -> None:
    try:
        found = dangerous_ops(path)
    except (ValueError, OSError) as error:
        raise ModelLoadError(f"{path} holds a SavedModel that cannot be read ({error}); export or copy it "
                             "again") from None
    if found:
        raise UntrustedModelError(
            f"{path} holds a SavedModel whose graph has ops that touch files, Python or the network "
            f"({', '.join(found)}), which evaluating it would run; if you trust whoever made it, pass "
            "--trust_model (trust_model=True)")


def _keras_input_shape(model: keras.Model) -> tuple[int | None, ...] | None:
    inputs = getattr(model, "inputs", None) or []
    return tuple(inputs[0].shape[1:]) if len(inputs) == 1 else None


def _signature_input_shape(signature) -> tuple[int | None, ...] | None:
    specs = tf.nest.flatten(signature.structured_input_signature)
    if len(specs) != 1 or specs[0].shape.rank is None:
        return None
    return tuple(specs[0].shape.as_list()[1:])


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


def check_classes(classifier: LogitsFn, data, split: str) -> str | None:
    """Refuses a model that cannot take the dataset's inputs (another shape) or has fewer outputs than the dataset
    has classes (its loss would index past the logits); returns a note for one with more (the extra logits take
    part in the softmax), else None. Runs the model on one example."""
    model_shape = getattr(classifier, "input_shape", None)
    data_shape = tuple(data.info.input_shape)
    if model_shape is not None and not _shapes_agree(model_shape, data_shape):
        raise ModelLoadError(_shape_mismatch(model_shape, data))
    images, _ = next(iter(data.evaluation(split, 1)))
    try:
        outputs = int(classifier(images).shape[-1])
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:  # A shape the model does not say.
        raise ModelLoadError(f"{_shape_mismatch(model_shape, data)} ({type(error).__name__}: "
                             f"{_first_line(error)})") from None
    classes = data.info.num_classes
    if outputs < classes:
        raise ModelLoadError(f"the model outputs {outputs} classes but {data.info.name} has {classes} (labels "
                             f"0..{classes - 1}); was it trained on another dataset?")
    if outputs > classes:
        return (f"note: the model outputs {outputs} classes, {data.info.name} has {classes}; the extra logits "
                "take part in the softmax (was it trained on another dataset?)")
    return None


def _shapes_agree(model_shape, data_shape) -> bool:
    return len(model_shape) == len(data_shape) and all(m is None or m == d for m, d in zip(model_shape, data_shape))


def _shape_mismatch(model_shape, data) -> str:
    takes = "inputs of another shape" if model_shape is None else \
        f"inputs of shape {tuple(model_shape)} (one example)"
    return (f"the model takes {takes} but {data.info.name}'s examples have shape {tuple(data.info.input_shape)}; "
            "evaluate it with the --dataset (and its options) it was trained on")


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
        # Across the workers of a cluster (inside its strategy's scope, as the trainer runs), each worker evaluates
        # every n-th batch and the sums are added over the workers: every worker gets the whole split's numbers
        # for 1/n of the work.
        strategy = tf.distribute.get_strategy()
        worker, workers = worker_share(strategy)
        loss_sum, correct_sum, count = 0.0, 0.0, 0
        for images, labels in dataset.shard(workers, worker) if workers > 1 else dataset:
            batch_loss, batch_correct, batch_count = batch_sums(images, labels)
            loss_sum += float(batch_loss)
            correct_sum += float(batch_correct)
            count += int(batch_count)
        if workers > 1:
            sums = all_workers_sum(strategy, tf.constant([loss_sum, correct_sum, count], tf.float64)).numpy()
            loss_sum, correct_sum, count = float(sums[0]), float(sums[1]), int(round(sums[2]))
        if count == 0:
            raise ValueError("cannot evaluate on an empty dataset")
        return {"loss": loss_sum / count, "accuracy": correct_sum / count, "examples": count}

    return evaluate
