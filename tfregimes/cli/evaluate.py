"""python -m tfregimes.evaluate --model=RUN/export --dataset=NAME [--split=test] [--output=FILE.json]
       [--metrics=sharpness,fisher_logdet,...] [--interpolate_with=OTHER.keras]

Evaluates a trained classifier: a run's export/ directory, any SavedModel (Keras `model.export` or one with a
single-output serving_default signature) or any `.keras` file, as long as the model outputs LOGITS. A run's
export normalizes its inputs itself (the run's statistics); any other model is fed inputs normalized as
`tfregimes.train` prepares them (--normalization, statistics from the full training split).

--metrics adds metrics of the minimum (tfregimes/diagnostics/minimum), computed on --metrics_split (default: the
training split); they need the Keras model (a `.keras` file or a run's export/ directory, not a bare SavedModel).
--interpolate_with=OTHER draws loss and accuracy along θ(a) = a·OTHER + (1 − a)·MODEL (CSV and PNG).
"""

import dataclasses
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from tfregimes.base.progress import Progress  # noqa: E402
from tfregimes.base.run_dir import write_json  # noqa: E402
from tfregimes.cli import common as cli_common  # noqa: E402
from tfregimes.cli import dataset_flag  # noqa: E402
from tfregimes.cli.summary import evaluation_summary  # noqa: E402
from tfregimes.data import NORMALIZATION_CHOICES, DatasetUnavailableError, load_dataset  # noqa: E402
from tfregimes.diagnostics.adapters import MINIMUM_METRICS, MetricSettings, compute_minimum_metrics, fixed_sample  # noqa: E402
from tfregimes.diagnostics.dynamics.margins import NORMALIZATIONS as MARGIN_NORMALIZATIONS  # noqa: E402
from tfregimes.diagnostics.minimum import (  # noqa: E402
    interpolation_alphas,
    interpolation_curve,
    plot_interpolation,
    write_interpolation_csv,
)
from tfregimes.diagnostics.minimum.interpolation import BN_STATISTICS, clipped_variance_warning  # noqa: E402
from tfregimes.diagnostics.minimum.robustness import NORMS, OUTPUTS  # noqa: E402
from tfregimes.diagnostics.minimum.sharpness import SPACES  # noqa: E402
from tfregimes.training.scoring import (  # noqa: E402
    ModelLoadError,
    carried_normalization,
    check_classes,
    evaluate_classifier,
    load_classifier,
    load_keras_model,
    normalization_to_load,
    split_input_normalization,
)

HELP_GROUPS = cli_common.HelpGroups()  # What --help shows, by concern.
HELP_GROUPS.begin("Model and data")
flags.DEFINE_string("model", None, "A run's export/ directory, a SavedModel directory or a .keras file; the "
                    "model must output logits.", required=True)
flags.DEFINE_string("dataset", None, f"Dataset: one of {dataset_flag.DATASET_CHOICES}.", required=True)
flags.DEFINE_string("data_dir", "", "Directory of the data (as for tfregimes.train).")
flags.DEFINE_boolean("download", False, "Let TFDS download a missing dataset (needs internet).")
flags.DEFINE_integer("train_subset", 0, "The run's --train_subset: evaluate on the same fixed training subset "
                     "(0: the whole training split).", lower_bound=0)
flags.DEFINE_integer("train_subset_seed", 0, "The run's --seed, which chose its --train_subset.")
flags.DEFINE_enum("split", "test", ["test", "train"], "Which split to evaluate loss and accuracy on.")
flags.DEFINE_enum("normalization", "auto", list(NORMALIZATION_CHOICES),
                  "Input normalization of a model that does not carry its own (auto: the dataset's default). "
                  "A run's export normalizes its inputs itself; a contradicting value is refused.")
flags.DEFINE_integer("batch_size", 512, "Evaluation batch size.", lower_bound=1)
flags.DEFINE_string("output", "", "Write the results as JSON to this file.")

# Metrics at the minimum (README: "Diagnostics at a minimum").
HELP_GROUPS.begin("Metrics of the minimum")
flags.DEFINE_list("metrics", [], f"Metrics of the minimum to add: any of {', '.join(MINIMUM_METRICS.names())}.")
flags.DEFINE_enum("margin_normalization", "total_variation", list(MARGIN_NORMALIZATIONS),
                  "margins: divide by the square root of the inputs' total variation (seed 000 A.1) or not.")
flags.DEFINE_string("save_margins", "", "margins: save the per-example margins (before the inter-quartile cut) "
                    "to this .npy file.")
flags.DEFINE_string("tensorboard_dir", "", "Also write the results as TensorBoard scalars here, e.g. "
                    "RUN/tensorboard/evaluate to see them beside the run's training curves.")
flags.DEFINE_enum("metrics_split", "train", ["train", "test"], "The split the metrics are computed on.")
flags.DEFINE_integer("metrics_samples", 2048, "Size of the fixed random sample (chosen by --seed) of "
                     "--metrics_split for sharpness, hessian_*, robustness and interpolation; 0: the whole split.",
                     lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of the metrics' random choices (sample, subsets, subspace, probes).")
flags.DEFINE_list("sharpness_eps", ["1e-3", "5e-4"], "ε of the sharpness box C_ε (seed 003: 1e-3 and 5e-4).")
flags.DEFINE_list("sharpness_spaces", list(SPACES), "Sharpness in the full space, a random subspace, or both.")
flags.DEFINE_integer("sharpness_subspace_dim", 100, "p, the dimension of the random subspace (seed 003: 100).",
                     lower_bound=1)
flags.DEFINE_integer("sharpness_maxiter", 10, "L-BFGS-B iterations of the sharpness maximization "
                     "(Keskar et al.: 10).", lower_bound=1)
flags.DEFINE_integer("fisher_samples", 100, "N', examples per subset for fisher_logdet, spectral_radius and "
                     "frobenius (seed 004: 100).", lower_bound=1)
flags.DEFINE_integer("fisher_trials", 100, "T, the number of subsets (seed 004: 100).", lower_bound=1)
flags.DEFINE_boolean("fisher_normalize_logits", False, "Use z/(‖z‖·0.04) in place of the logits z, as the "
                     "authors' code of seed 004 does.")
flags.DEFINE_integer("hessian_iterations", 20, "Power iterations of hessian_top.", lower_bound=1)
flags.DEFINE_float("hessian_tolerance", 1e-3, "hessian_top stops when its estimate changes by at most this "
                   "fraction.", lower_bound=0.0)
flags.DEFINE_integer("hessian_probes", 20, "Hutchinson probes of hessian_trace and hessian_frobenius.",
                     lower_bound=1)
flags.DEFINE_enum("robustness_norm", "spectral", list(NORMS),
                  "Norm of the input-output Jacobian: spectral (seed 004 §7.1's ‖·‖₂) or frobenius.")
flags.DEFINE_enum("robustness_output", "probabilities", list(OUTPUTS), "Differentiate the softmax "
                  "probabilities (seed 004) or the logits.")
HELP_GROUPS.begin("Interpolation")
flags.DEFINE_string("interpolate_with", "", "A second model (.keras or a run's export/): write loss and "
                    "accuracy along θ(a) = a·THIS + (1 − a)·--model (seed 003, Figure 3).")
flags.DEFINE_integer("interpolation_points", 31, "Values of a, evenly spaced over [-1, 2].", lower_bound=2)
flags.DEFINE_string("interpolation_output", "interpolation", "Writes PREFIX.csv and PREFIX.png.")
flags.DEFINE_enum("interpolation_bn", "recompute", list(BN_STATISTICS),
                  "Batch-norm moving statistics at each θ(a): recompute them from the training sample (default; "
                  "Keskar et al. evaluate with batch statistics) or interpolate them like the weights (moving "
                  "variances extrapolated below 0 are clipped, with a warning).")
HELP_GROUPS.end()
dataset_flag.register_dataset_validator("dataset")
flags.register_validator("metrics", lambda names: all(name in MINIMUM_METRICS for name in names),
                         message=f"must be a comma-separated list of {', '.join(MINIMUM_METRICS.names())}")
flags.register_validator("sharpness_spaces", lambda spaces: bool(spaces) and set(spaces) <= set(SPACES),
                         message=f"must be a comma-separated list of {', '.join(SPACES)}")


def _positive_floats(values) -> bool:
    try:
        return bool(values) and all(float(value) > 0 for value in values)
    except ValueError:
        return False


flags.register_validator("sharpness_eps", _positive_floats, message="must be a list of positive numbers")
FLAGS = flags.FLAGS


def metric_settings() -> MetricSettings:
    return MetricSettings(
        seed=FLAGS.seed, batch_size=FLAGS.batch_size, sample_size=FLAGS.metrics_samples or None,
        sharpness_epsilons=tuple(float(e) for e in FLAGS.sharpness_eps),
        sharpness_spaces=tuple(FLAGS.sharpness_spaces),
        sharpness_subspace_dim=FLAGS.sharpness_subspace_dim, sharpness_maxiter=FLAGS.sharpness_maxiter,
        fisher_samples=FLAGS.fisher_samples, fisher_trials=FLAGS.fisher_trials,
        fisher_normalized_logits=FLAGS.fisher_normalize_logits, hessian_iterations=FLAGS.hessian_iterations,
        hessian_tolerance=FLAGS.hessian_tolerance, hessian_probes=FLAGS.hessian_probes,
        robustness_norm=FLAGS.robustness_norm, robustness_output=FLAGS.robustness_output,
        margin_normalization=FLAGS.margin_normalization, save_margins=FLAGS.save_margins or None)


def metrics_summary(metrics: dict) -> str:
    lines = []
    for name, result in metrics.items():
        if name == "sharpness":
            for key, entry in result.items():
                lines.append(f"  sharpness {key:<19} {entry['value']:.6g}    "
                             f"({entry['status']}; {entry['seconds']:.1f} s)")
        else:
            spread = f" ± {result['std']:.3g}" if "std" in result else ""
            lines.append(f"  {name:<29} {result['value']:.6g}{spread}    ({result['seconds']:.1f} s)")
    return "\n".join(lines)


def interpolate(model_1, normalize, data, settings: MetricSettings) -> dict:
    model_2, layer_2 = split_input_normalization(load_keras_model(FLAGS.interpolate_with))
    if (normalize is None) != (layer_2 is None) or (layer_2 is not None and not normalize.same_as(layer_2)):
        raise ModelLoadError(f"{FLAGS.model} and {FLAGS.interpolate_with} normalize their inputs differently; "
                             "interpolation needs two runs on the same data with the same --normalization")
    splits = {split: fixed_sample(*_metric_arrays(data, split, normalize), settings.sample_size, settings.seed)
              for split in ("train", "test")}
    rows = interpolation_curve(model_1, model_2, splits, interpolation_alphas(FLAGS.interpolation_points),
                               batch_size=FLAGS.batch_size, bn_statistics=FLAGS.interpolation_bn,
                               progress=Progress())
    warning = clipped_variance_warning(rows)
    if warning:
        print(warning, file=sys.stderr)
    csv_path, png_path = f"{FLAGS.interpolation_output}.csv", f"{FLAGS.interpolation_output}.png"
    write_interpolation_csv(rows, csv_path)
    plot_interpolation(rows, png_path, title=f"θ₁ = {FLAGS.model}, θ₂ = {FLAGS.interpolate_with}")
    return {"from": FLAGS.model, "to": FLAGS.interpolate_with, "csv": csv_path, "png": png_path,
            "bn_statistics": FLAGS.interpolation_bn, "curve": rows}


def _metric_arrays(data, split: str, normalize):
    """A split's arrays as the network behind an export's input normalization sees them (normalized as in
    training), so that input-space metrics are those of training's inputs."""
    inputs, labels = data.arrays(split)
    return (inputs if normalize is None else normalize.normalize_numpy(inputs)), labels


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    cli_common.quiet_python_logs()
    settings = metric_settings()
    try:
        carried = carried_normalization(FLAGS.model)  # None: not a tfregimes export
        normalization = normalization_to_load(FLAGS.model, FLAGS.normalization)
        logits_fn = load_classifier(FLAGS.model)
        keras_model = normalize = None
        if FLAGS.metrics or FLAGS.interpolate_with:
            keras_model, normalize = split_input_normalization(load_keras_model(FLAGS.model))
        data = load_dataset(FLAGS.dataset, data_dir=FLAGS.data_dir or None, normalization=normalization,
                            download=FLAGS.download, train_subset=FLAGS.train_subset or None,
                            seed=FLAGS.train_subset_seed)
        if keras_model is not None:
            data.arrays(FLAGS.metrics_split)  # Fails now, not after the evaluation, for a streamed dataset.
        note = check_classes(logits_fn, data, FLAGS.split)
        if note:
            print(note, file=sys.stderr)
    except (ModelLoadError, DatasetUnavailableError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # The command, so an evaluation file says how to repeat it (a run directory records its flags the same way).
    result = {"command": " ".join(shlex.quote(part) for part in ["python", "-m", "tfregimes.evaluate", *sys.argv[1:]]),
              "model": FLAGS.model, "dataset": FLAGS.dataset, "split": FLAGS.split,
              "normalization": carried or data.info.normalization,
              "normalization_carried_by_model": carried is not None,
              **evaluate_classifier(logits_fn, data.evaluation(FLAGS.split, FLAGS.batch_size))}
    print(evaluation_summary(result))
    if FLAGS.metrics:
        inputs, labels = _metric_arrays(data, FLAGS.metrics_split, normalize)
        result["metrics_split"] = FLAGS.metrics_split
        result["metric_settings"] = dataclasses.asdict(settings)
        # Progress on stderr: a bar on a terminal, one line per step in a log.
        metrics = compute_minimum_metrics(keras_model, inputs, labels, FLAGS.metrics, settings, progress=Progress())
        result.update(metrics)
        # The loss-based metrics see a fixed sample (--metrics_samples) of the split; the Fisher ones their own
        # subsets of --fisher_samples.
        result["metrics_examples"] = min(settings.sample_size or len(inputs), len(inputs))
        print(f"Metrics of the minimum on the {FLAGS.metrics_split} split (a fixed sample of "
              f"{result['metrics_examples']} of its {len(inputs)} examples):")
        print(metrics_summary(metrics))
    if FLAGS.interpolate_with:
        try:
            result["interpolation"] = interpolate(keras_model, normalize, data, settings)
        except (ModelLoadError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"  interpolation   {result['interpolation']['csv']}, {result['interpolation']['png']}")
    if FLAGS.output:
        write_json(FLAGS.output, result)
        print(f"  written to      {FLAGS.output}")
    if FLAGS.tensorboard_dir:
        write_scalars(FLAGS.tensorboard_dir, result)
        print(f"  TensorBoard     {FLAGS.tensorboard_dir}")
    return 0


def scalar_values(result: dict) -> dict[str, float]:
    """The numbers of an evaluation result as TensorBoard tags: `loss`, `accuracy`, `<metric>` (its value), and
    `sharpness/<space_eps>` (sharpness has one value per space and ε)."""
    scalars = {name: result[name] for name in ("loss", "accuracy")}
    for name in FLAGS.metrics:
        entry = result[name]
        if name == "sharpness":
            scalars.update({f"sharpness/{key}": item["value"] for key, item in entry.items()})
        else:
            scalars[name] = entry["value"]
    return scalars


def write_scalars(log_dir: str, result: dict) -> None:
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for tag, value in scalar_values(result).items():
            tf.summary.scalar(f"{FLAGS.split if tag in ('loss', 'accuracy') else FLAGS.metrics_split}/{tag}",
                              value, step=0)
    writer.close()


def entry_point() -> None:
    """`python -m tfregimes.evaluate`."""
    cli_common.run(main, HELP_GROUPS, doc=__doc__)


if __name__ == "__main__":
    entry_point()
