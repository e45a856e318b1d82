"""python -m tfregimes.evaluate --model=RUN/export --dataset=NAME [--split=test] [--output=FILE.json]
       [--metrics=sharpness,fisher_logdet,...] [--interpolate_with=OTHER.keras]

Evaluates a trained classifier: a run's export/ directory, any SavedModel (Keras `model.export` or one with a
single-output serving_default signature) or any `.keras` file, as long as the model outputs LOGITS. A run's
export normalizes its inputs itself (the run's statistics); any other model is fed inputs normalized as
`tfregimes.train` prepares them (--normalization, statistics from the full training split).

--metrics adds metrics of the minimum (tfregimes/diagnostics/minimum), computed on --metrics_split (default: the
training split); they need the Keras model (a `.keras` file or a run's export/ directory, not a bare SavedModel).
--interpolate_with=OTHER draws loss and accuracy along θ(a) = a·OTHER + (1 − a)·MODEL (CSV and PNG).

A front end of `tfregimes.evaluation.evaluate_model`: every flag is a field of `EvaluationConfig` or of its
`MetricSettings` (same name, but for `METRIC_FLAGS`), whose defaults the flags take.
"""

import dataclasses
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tfregimes.base.progress import Progress  # noqa: E402
from tfregimes.base.run_files import write_json  # noqa: E402
from tfregimes.cli import common as cli_common  # noqa: E402
from tfregimes.cli import dataset_flag  # noqa: E402
from tfregimes.cli.summary import evaluation_summary, metrics_summary  # noqa: E402
from tfregimes.data import NORMALIZATION_CHOICES, DatasetUnavailableError  # noqa: E402
from tfregimes.diagnostics.adapters import MINIMUM_METRICS, MetricSettings  # noqa: E402
from tfregimes.diagnostics.dynamics.margins import NORMALIZATIONS as MARGIN_NORMALIZATIONS  # noqa: E402
from tfregimes.diagnostics.minimum.interpolation import BN_STATISTICS  # noqa: E402
from tfregimes.diagnostics.minimum.robustness import NORMS, OUTPUTS  # noqa: E402
from tfregimes.diagnostics.minimum.sharpness import SPACES  # noqa: E402
from tfregimes.evaluation import EvaluationConfig, evaluate_model, metric_entries, write_scalars  # noqa: E402
from tfregimes.evaluation.config import METRIC_FLAGS  # noqa: E402
from tfregimes.training.scoring import ModelLoadError  # noqa: E402

_DEFAULT = EvaluationConfig(model="", dataset="")  # Every flag's default, from the dataclasses.
_SETTINGS = _DEFAULT.settings

HELP_GROUPS = cli_common.HelpGroups()  # What --help shows, by concern.
HELP_GROUPS.begin("Model and data")
flags.DEFINE_string("model", None, "A run's export/ directory, a SavedModel directory or a .keras file; the "
                    "model must output logits.", required=True)
flags.DEFINE_string("dataset", None, f"Dataset: one of {dataset_flag.DATASET_CHOICES}.", required=True)
flags.DEFINE_string("data_dir", _DEFAULT.data_dir, "Directory of the data (as for tfregimes.train).")
flags.DEFINE_boolean("download", _DEFAULT.download, "Let TFDS download a missing dataset (needs internet).")
flags.DEFINE_integer("train_subset", _DEFAULT.train_subset, "The run's --train_subset: evaluate on the same fixed "
                     "training subset (0: the whole training split).", lower_bound=0)
flags.DEFINE_integer("train_subset_seed", _DEFAULT.train_subset_seed,
                     "The run's --seed, which chose its --train_subset.")
flags.DEFINE_enum("split", _DEFAULT.split, ["test", "train"], "Which split to evaluate loss and accuracy on.")
flags.DEFINE_enum("normalization", _DEFAULT.normalization, list(NORMALIZATION_CHOICES),
                  "Input normalization of a model that does not carry its own (auto: the dataset's default). "
                  "A run's export normalizes its inputs itself; a contradicting value is refused.")
flags.DEFINE_boolean("trust_model", _DEFAULT.trust_model, "Evaluate a SavedModel even if its graph holds ops "
                     "that touch files, Python or the network (WriteFile, PyFunc, ...): they run. Without it such "
                     "a model is refused.")
flags.DEFINE_boolean("allow_other_data", _DEFAULT.allow_other_data, "Evaluate a run's export on data other than "
                     "the run's data.json records it was trained on (e.g. a rewritten npz file). Without it that is "
                     "refused.")
flags.DEFINE_integer("batch_size", _SETTINGS.batch_size, "Evaluation batch size.", lower_bound=1)
flags.DEFINE_string("output", _DEFAULT.output, "Write the results as JSON to this file.")

# Metrics at the minimum (docs/diagnostics.md, "Diagnostics at a minimum").
HELP_GROUPS.begin("Metrics of the minimum")
flags.DEFINE_list("metrics", list(_DEFAULT.metrics),
                  f"Metrics of the minimum to add: any of {', '.join(MINIMUM_METRICS.names())}.")
flags.DEFINE_enum("margin_normalization", _SETTINGS.margin_normalization, list(MARGIN_NORMALIZATIONS),
                  "margins: divide by the square root of the inputs' total variation (seed 000 A.1) or not.")
flags.DEFINE_string("save_margins", _SETTINGS.save_margins or "", "margins: save the per-example margins (before "
                    "the inter-quartile cut) to this .npy file.")
flags.DEFINE_string("tensorboard_dir", _DEFAULT.tensorboard_dir, "Also write the results as TensorBoard scalars "
                    "here, e.g. RUN/tensorboard/evaluate to see them beside the run's training curves.")
flags.DEFINE_enum("metrics_split", _DEFAULT.metrics_split, ["train", "test"], "The split the metrics are computed on.")
flags.DEFINE_integer("metrics_samples", _SETTINGS.sample_size or 0, "Size of the fixed random sample (chosen by "
                     "--seed) of --metrics_split for sharpness, hessian_*, robustness and interpolation; 0: the whole "
                     "split.", lower_bound=0)
flags.DEFINE_integer("seed", _SETTINGS.seed, "Seed of the metrics' random choices (sample, subsets, subspace, "
                     "probes).")
flags.DEFINE_list("sharpness_eps", [f"{epsilon:g}" for epsilon in _SETTINGS.sharpness_epsilons],
                  "ε of the sharpness box C_ε (seed 003: 1e-3 and 5e-4).")
flags.DEFINE_list("sharpness_spaces", list(_SETTINGS.sharpness_spaces),
                  "Sharpness in the full space, a random subspace, or both.")
flags.DEFINE_integer("sharpness_subspace_dim", _SETTINGS.sharpness_subspace_dim,
                     "p, the dimension of the random subspace (seed 003: 100).", lower_bound=1)
flags.DEFINE_integer("sharpness_maxiter", _SETTINGS.sharpness_maxiter, "L-BFGS-B iterations of the sharpness "
                     "maximization (Keskar et al.: 10).", lower_bound=1)
flags.DEFINE_integer("fisher_samples", _SETTINGS.fisher_samples, "N', examples per subset for fisher_logdet, "
                     "spectral_radius and frobenius (seed 004: 100).", lower_bound=1)
flags.DEFINE_integer("fisher_trials", _SETTINGS.fisher_trials, "T, the number of subsets (seed 004: 100).",
                     lower_bound=1)
flags.DEFINE_boolean("fisher_normalize_logits", _SETTINGS.fisher_normalized_logits, "Use z/(‖z‖·0.04) in place of "
                     "the logits z, as the authors' code of seed 004 does.")
flags.DEFINE_integer("hessian_iterations", _SETTINGS.hessian_iterations, "Power iterations of hessian_top.",
                     lower_bound=1)
flags.DEFINE_float("hessian_tolerance", _SETTINGS.hessian_tolerance, "hessian_top stops when its estimate changes "
                   "by at most this fraction.", lower_bound=0.0)
flags.DEFINE_integer("hessian_probes", _SETTINGS.hessian_probes, "Hutchinson probes of hessian_trace and "
                     "hessian_frobenius.", lower_bound=1)
flags.DEFINE_enum("robustness_norm", _SETTINGS.robustness_norm, list(NORMS),
                  "Norm of the input-output Jacobian: spectral (seed 004 §7.1's ‖·‖₂) or frobenius.")
flags.DEFINE_enum("robustness_output", _SETTINGS.robustness_output, list(OUTPUTS), "Differentiate the softmax "
                  "probabilities (seed 004) or the logits.")
HELP_GROUPS.begin("Interpolation")
flags.DEFINE_string("interpolate_with", _DEFAULT.interpolate_with, "A second model (.keras or a run's export/): "
                    "write loss and accuracy along θ(a) = a·THIS + (1 − a)·--model (seed 003, Figure 3).")
flags.DEFINE_integer("interpolation_points", _DEFAULT.interpolation_points, "Values of a, evenly spaced over "
                     "[-1, 2].", lower_bound=2)
flags.DEFINE_string("interpolation_output", _DEFAULT.interpolation_output, "Writes PREFIX.csv and PREFIX.png.")
flags.DEFINE_enum("interpolation_bn", _DEFAULT.interpolation_bn, list(BN_STATISTICS),
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


def config_from_flags() -> EvaluationConfig:
    """The EvaluationConfig of the parsed command line."""
    flag_of = {name: flag for flag, name in METRIC_FLAGS.items()}
    settings = {f.name: FLAGS[flag_of.get(f.name, f.name)].value for f in dataclasses.fields(MetricSettings)}
    settings["sample_size"] = settings["sample_size"] or None  # 0: the whole split.
    settings["save_margins"] = settings["save_margins"] or None
    values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(EvaluationConfig) if f.name != "settings"}
    return EvaluationConfig(**values, settings=MetricSettings(**settings))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    cli_common.quiet_python_logs()
    config = config_from_flags()
    # The command, so an evaluation file says how to repeat it (a run directory records its flags the same way).
    command = " ".join(shlex.quote(part) for part in ["python", "-m", "tfregimes.evaluate", *sys.argv[1:]])
    try:
        # Progress on stderr: a bar on a terminal, one line per step in a log.
        result = {"command": command, **evaluate_model(config, progress=Progress())}
    except (ModelLoadError, DatasetUnavailableError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(evaluation_summary(result))
    if config.metrics:
        print(f"Metrics of the minimum on the {config.metrics_split} split (a fixed sample of "
              f"{result['metrics_examples']} of its {result['metrics_split_examples']} examples):")
        print(metrics_summary(metric_entries(result)))
    if config.interpolate_with:
        print(f"  interpolation   {result['interpolation']['csv']}, {result['interpolation']['png']}")
    if config.output:
        write_json(config.output, result)
        print(f"  written to      {config.output}")
    if config.tensorboard_dir:
        write_scalars(config.tensorboard_dir, result)
        print(f"  TensorBoard     {config.tensorboard_dir}")
    return 0


def entry_point() -> None:
    """`python -m tfregimes.evaluate`."""
    cli_common.run(main, HELP_GROUPS, doc=__doc__)


if __name__ == "__main__":
    entry_point()
