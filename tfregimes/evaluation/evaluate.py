"""`evaluate_model`: loss and accuracy of a trained classifier, the metrics of its minimum and the interpolation
towards a second model, as the one flat dict `python -m tfregimes.evaluate` prints and writes.

A run's export normalizes its inputs itself (the run's statistics); any other model is fed inputs normalized as
`tfregimes.train` prepares them (`normalization`, statistics from the full training split). Metrics of the minimum
need the Keras model (a `.keras` file or a run's export/ directory, not a bare SavedModel); they see the inputs as
the network behind an export's input normalization does.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfregimes.base.progress import Progress
from tfregimes.base.run_dir import RunDirectory
from tfregimes.base.run_files import FLAGS_FILE, read_object
from tfregimes.data import dataset_fingerprint, fingerprint_differences, load_dataset
from tfregimes.diagnostics.adapters import MINIMUM_METRICS, compute_minimum_metrics, fixed_sample
from tfregimes.diagnostics.minimum import (
    interpolation_alphas,
    interpolation_curve,
    plot_interpolation,
    write_interpolation_csv,
)
from tfregimes.diagnostics.minimum.interpolation import clipped_variance_warning
from tfregimes.evaluation.config import EvaluationConfig
from tfregimes.training.run_claim import RunDataMismatch
from tfregimes.training.scoring import (
    ModelLoadError,
    carried_normalization,
    check_classes,
    evaluate_classifier,
    load_classifier,
    load_keras_model,
    normalization_to_load,
    split_input_normalization,
)

# Keys of the result that are not metric entries, though dicts: what `metric_entries` skips.
_NOT_METRICS = frozenset({"data", "metric_settings", "interpolation"})


def evaluate_model(config: EvaluationConfig, *, progress: Progress | None = None) -> dict[str, Any]:
    """The evaluation `config` describes: {model, dataset, data (the fingerprint of the data it read:
    tfregimes.data.fingerprint), split, normalization, normalization_carried_by_model, loss, accuracy, examples};
    with `metrics`, also metrics_split, metric_settings, one flat entry per metric value (`metric_entries`),
    metrics_examples (the sample's size) and metrics_split_examples; with `interpolate_with`, also interpolation
    (its CSV and PNG written).

    Raises ModelLoadError, DatasetUnavailableError or ValueError, each a one-paragraph message, for a model or data
    that cannot be used (RunDataMismatch for a run's export on other data than its data.json records, unless
    `allow_other_data`); every such check runs before the first expensive step. `progress` (None: silent) shows the
    metrics and the interpolation step by step; notes (a model with more classes than the data) go to stderr."""
    settings = config.settings
    carried = carried_normalization(config.model)  # None: not a tfregimes export
    normalization = normalization_to_load(config.model, config.normalization)
    logits_fn = load_classifier(config.model, trust_model=config.trust_model)
    keras_model = normalize = None
    if config.metrics or config.interpolate_with:
        keras_model, normalize = split_input_normalization(load_keras_model(config.model))
    data = load_dataset(config.dataset, data_dir=config.data_dir or None, normalization=normalization,
                        download=config.download, train_subset=config.train_subset or None,
                        seed=config.train_subset_seed)
    if keras_model is not None:
        data.arrays(config.metrics_split)  # Fails now, not after the evaluation, for a streamed dataset.
    note = check_classes(logits_fn, data, config.split)
    if note:
        print(note, file=sys.stderr)
    fingerprint = dataset_fingerprint(config.dataset, data_dir=config.data_dir or None)
    check_run_data(config.model, fingerprint, config.allow_other_data)
    result = {"model": config.model, "dataset": config.dataset, "data": fingerprint, "split": config.split,
              "normalization": carried or data.info.normalization,
              "normalization_carried_by_model": carried is not None,
              **evaluate_classifier(logits_fn, data.evaluation(config.split, settings.batch_size))}
    if config.metrics:
        inputs, labels = _metric_arrays(data, config.metrics_split, normalize)
        result["metrics_split"] = config.metrics_split
        result["metric_settings"] = dataclasses.asdict(settings)
        result.update(compute_minimum_metrics(keras_model, inputs, labels, config.metrics, settings,
                                              progress=progress))
        # The loss-based metrics see a fixed sample (sample_size) of the split; the Fisher ones their own subsets.
        result["metrics_examples"] = min(settings.sample_size or len(inputs), len(inputs))
        result["metrics_split_examples"] = len(inputs)
    if config.interpolate_with:
        result["interpolation"] = _interpolate(config, keras_model, normalize, data, progress)
    return result


def trained_run(model: str | Path) -> RunDirectory | None:
    """The run directory whose export `model` is (RUN/export, or its saved_model or model.keras), else None."""
    path = Path(model).resolve()
    export = path if path.name == "export" else path.parent if path.parent.name == "export" else None
    if export is None or not (export.parent / FLAGS_FILE).is_file():
        return None
    return RunDirectory(export.parent)


def check_run_data(model: str | Path, fingerprint: dict[str, Any], allow_other_data: bool = False) -> None:
    """Refuses to evaluate a run's export on other data than the run recorded it was trained on (RUN/data.json):
    a changed npz file, other IDX files, another dataset. `allow_other_data`: evaluate anyway (a note on stderr)."""
    run = trained_run(model)
    if run is None or not run.data_path.exists():  # Not a run's export, or a run older than data.json.
        return
    recorded, why = read_object(run.data_path)
    if recorded is None:
        problem = f"{run.root}/{why}: the data the run was trained on cannot be checked"
    else:
        changes = fingerprint_differences(recorded, fingerprint)
        if not changes:
            return
        problem = (f"{run.root} was trained on other data ({recorded.get('dataset')}) than {fingerprint['dataset']} "
                   f"holds now ({'; '.join(changes)})")
    if not allow_other_data:
        raise RunDataMismatch(f"{problem}; its numbers would not be of the data it was trained on. Restore that "
                              "data, or pass --allow_other_data (allow_other_data=True) to evaluate it anyway.")
    print(f"note: {problem}; evaluating anyway (--allow_other_data).", file=sys.stderr)


def _metric_arrays(data, split: str, normalize):
    """A split's arrays as the network behind an export's input normalization sees them (normalized as in
    training), so that input-space metrics are those of training's inputs."""
    inputs, labels = data.arrays(split)
    return (inputs if normalize is None else normalize.normalize_numpy(inputs)), labels


def _interpolate(config: EvaluationConfig, model_1, normalize, data, progress: Progress | None) -> dict:
    model_2, layer_2 = split_input_normalization(load_keras_model(config.interpolate_with))
    if (normalize is None) != (layer_2 is None) or (layer_2 is not None and not normalize.same_as(layer_2)):
        raise ModelLoadError(f"{config.model} and {config.interpolate_with} normalize their inputs differently; "
                             "interpolation needs two runs on the same data with the same --normalization")
    settings = config.settings
    splits = {split: fixed_sample(*_metric_arrays(data, split, normalize), settings.sample_size, settings.seed)
              for split in ("train", "test")}
    rows = interpolation_curve(model_1, model_2, splits, interpolation_alphas(config.interpolation_points),
                               batch_size=settings.batch_size, bn_statistics=config.interpolation_bn,
                               progress=progress)
    warning = clipped_variance_warning(rows)
    if warning:
        print(warning, file=sys.stderr)
    csv_path, png_path = f"{config.interpolation_output}.csv", f"{config.interpolation_output}.png"
    write_interpolation_csv(rows, csv_path)
    plot_interpolation(rows, png_path, title=f"θ₁ = {config.model}, θ₂ = {config.interpolate_with}")
    return {"from": config.model, "to": config.interpolate_with, "csv": csv_path, "png": png_path,
            "bn_statistics": config.interpolation_bn, "curve": rows}


def metric_entries(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{name: entry} of every metric of the minimum in an evaluation result: each entry a dict with a "value"."""
    return {name: entry for name, entry in result.items()
            if name not in _NOT_METRICS and isinstance(entry, dict) and "value" in entry}


def scalar_values(result: dict[str, Any]) -> dict[str, float]:
    """The numbers of an evaluation result as TensorBoard tags: `<split>/loss`, `<split>/accuracy` and
    `<metrics_split>/<entry>` for each metric entry (`train/sharpness/full_eps1e-3`, `train/fisher_logdet`)."""
    scalars = {f"{result['split']}/{name}": result[name] for name in ("loss", "accuracy")}
    scalars.update({f"{result.get('metrics_split')}/{name}": entry["value"]
                    for name, entry in metric_entries(result).items()})
    return scalars


def scalar_tags(config: EvaluationConfig) -> list[str]:
    """The tags `write_scalars` writes for an evaluation by `config`, known before it runs (sweeps declare them)."""
    names = [entry for name in config.metrics
             for entry in MINIMUM_METRICS.get(name).entry_names(name, config.settings)]
    return [f"{config.split}/loss", f"{config.split}/accuracy", *(f"{config.metrics_split}/{n}" for n in names)]


def write_scalars(log_dir: str, result: dict[str, Any]) -> None:
    """`scalar_values(result)` at step 0 in `log_dir` (e.g. RUN/tensorboard/evaluate, beside the training curves)."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for tag, value in scalar_values(result).items():
            tf.summary.scalar(tag, value, step=0)
    writer.close()
