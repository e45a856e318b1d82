"""Command-line flags of `python -m tfregimes.train`; the only module besides the CLIs that touches absl FLAGS.

Every flag is a field of `tfregimes.config.RunConfig` with the same name. Values that come from a registry are
enums of that registry's names, and rules across flags are validators, so a bad flag fails at parse time, naming
the flag and the valid values, before any data or model is built.
"""

from __future__ import annotations

from absl import flags

from tfregimes import config as config_lib
from tfregimes import cli_common
from tfregimes.data import AUGMENTATIONS, NORMALIZATION_CHOICES
from tfregimes.models import model_names
from tfregimes.models.decay import DECAY_SCOPES
from tfregimes.optim import OPTIMIZERS, SCHEDULES

FLAGS = flags.FLAGS
_DEFAULT = config_lib.RunConfig()


def _csv(values) -> list[str]:
    return [config_lib.format_flag_value(v) for v in values]


# --- Data -----------------------------------------------------------------------------------------------------
flags.DEFINE_string(
    "dataset", _DEFAULT.dataset,
    f"Dataset: one of {cli_common.DATASET_CHOICES} (a .npz file with arrays x_train, y_train, x_test, y_test; "
    "images NHWC or flat).")
flags.DEFINE_string("data_dir", _DEFAULT.data_dir,
                    "Directory of the data (TFDS data_dir; for fashion_mnist the four IDX files). Empty: defaults.")
flags.DEFINE_boolean("download", _DEFAULT.download,
                     "Let TFDS download a dataset that is not in --data_dir (needs internet).")
flags.DEFINE_integer("train_subset", _DEFAULT.train_subset,
                     "Train on a fixed random subset of N training examples (seeded by --seed); 0: all.", lower_bound=0)
flags.DEFINE_enum("normalization", _DEFAULT.normalization, list(NORMALIZATION_CHOICES),
                  "Input normalization; auto: the dataset's default (per_pixel for CIFAR/SVHN, per_channel for "
                  "MNIST-like and ImageNet, none for npz:, mnist1d and synthetic). Statistics from the full training set.")
flags.DEFINE_enum("augment", _DEFAULT.augment, AUGMENTATIONS.names(),
                  "Training-time augmentation: crop1_flip/crop4_flip pad by 1/4 pixels, random crop and flip "
                  "(seed 004 scenario II); imagenet is seed 000 appendix A.2's recipe.")
flags.DEFINE_boolean("svhn_extra", _DEFAULT.svhn_extra,
                     "svhn_cropped only: add the 531k `extra` split to training, as seed 000 does.")

# --- Model ----------------------------------------------------------------------------------------------------
flags.DEFINE_enum("model", _DEFAULT.model, model_names(),
                  "Architecture (python -m tfregimes.models lists them with parameter counts).")
flags.DEFINE_list("hidden_sizes", _csv(_DEFAULT.hidden_sizes), "Hidden layer widths of --model=mlp.")
flags.DEFINE_float("dropout", _DEFAULT.dropout, "Dropout rate of models that have dropout.",
                   lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_enum("weight_decay_scope", _DEFAULT.weight_decay_scope, list(DECAY_SCOPES),
                  "Which weights --weight_decay applies to: all (seed 000 decays the FC bias too) or "
                  "exclude_bn_bias (no decay on batch-norm parameters and biases).")

# --- Optimization ---------------------------------------------------------------------------------------------
flags.DEFINE_integer("epochs", _DEFAULT.epochs, "Number of training epochs.", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULT.batch_size, "Global training batch size.", lower_bound=1)
flags.DEFINE_enum("optimizer", _DEFAULT.optimizer, OPTIMIZERS.names(), "Optimizer.")
flags.DEFINE_float("learning_rate", _DEFAULT.learning_rate, "Base learning rate.", lower_bound=0.0)
flags.DEFINE_float("momentum", _DEFAULT.momentum, "Momentum μ (Keras convention v ← μv − η∇f).",
                   lower_bound=0.0, upper_bound=0.999999)
flags.DEFINE_boolean("nesterov", _DEFAULT.nesterov, "Nesterov momentum (sgd).")
flags.DEFINE_float("weight_decay", _DEFAULT.weight_decay,
                   "Coupled L2 weight decay λ: λ·w is added to the gradient (the gradient of λ/2·‖w‖²).",
                   lower_bound=0.0)
flags.DEFINE_enum("lr_schedule", _DEFAULT.lr_schedule, SCHEDULES.names(), "Learning-rate schedule.")
flags.DEFINE_list("lr_boundaries", _csv(_DEFAULT.lr_boundaries),
                  "Epochs at which the step schedule multiplies the learning rate by --lr_decay, e.g. 150,225.")
flags.DEFINE_float("lr_decay", _DEFAULT.lr_decay, "Factor of each step of the step schedule.",
                   lower_bound=0.0, upper_bound=1.0)

# --- Run ------------------------------------------------------------------------------------------------------
flags.DEFINE_integer("seed", _DEFAULT.seed, "Seed of initialization, data order and augmentation.")
flags.DEFINE_string("model_dir", _DEFAULT.model_dir,
                    "Run directory. Empty: runs/<dataset>_<model>_<timestamp>. An existing run directory is resumed "
                    "from its last completed epoch.")
flags.DEFINE_integer("eval_every", _DEFAULT.eval_every, "Evaluate on the test split every N epochs.", lower_bound=1)
flags.DEFINE_integer("eval_batch_size", _DEFAULT.eval_batch_size, "Batch size of evaluation passes.", lower_bound=1)
flags.DEFINE_boolean("deterministic", _DEFAULT.deterministic,
                     "Deterministic TF ops, so a repeated or resumed run gives the same numbers on the same machine.")
flags.DEFINE_enum("verbose", str(_DEFAULT.verbose), ["0", "1", "2"],
                  "Keras fit verbosity: 1 progress bar, 2 one line per epoch, 0 silent.")
flags.DEFINE_string("profile_batch", _DEFAULT.profile_batch,
                    "N,M: record a TensorBoard profile of training batches N to M (needs tensorboard-plugin-profile "
                    "to view). Empty: no profile.")


# --- Rules on single values that absl cannot express ----------------------------------------------------------
def _all_numbers(kind):
    def check(values):
        try:
            return all(kind(v) >= 0 for v in values)
        except ValueError:
            return False
    return check


cli_common.register_dataset_validator("dataset")
flags.register_validator("hidden_sizes", lambda v: len(v) > 0 and _all_numbers(int)(v) and all(int(x) > 0 for x in v),
                         message="must be a comma-separated list of positive integers, e.g. 256,128")
flags.register_validator("lr_boundaries", _all_numbers(float),
                         message="must be a comma-separated list of non-negative epochs, e.g. 150,225")


def _valid_profile_batch(text: str) -> bool:
    if not text:
        return True
    parts = text.split(",")
    return len(parts) == 2 and all(p.strip().isdigit() for p in parts) and 0 < int(parts[0]) <= int(parts[1])


flags.register_validator("profile_batch", _valid_profile_batch,
                         message="must be empty or N,M with 0 < N <= M, e.g. 10,20")


# --- Rules across flags ---------------------------------------------------------------------------------------
@flags.multi_flags_validator(["lr_boundaries", "epochs"],
                             message="--lr_boundaries must be increasing epochs inside (0, --epochs)")
def _boundaries_inside_training(values):
    try:
        boundaries = [float(b) for b in values["lr_boundaries"]]
    except ValueError:
        return True  # Reported by the single-flag validator.
    return all(0 < b < values["epochs"] for b in boundaries) and boundaries == sorted(boundaries)


@flags.multi_flags_validator(["train_subset", "batch_size"],
                             message="--train_subset must be 0 (all) or at least --batch_size examples")
def _subset_holds_a_batch(values):
    return values["train_subset"] == 0 or values["train_subset"] >= values["batch_size"]


def config_from_flags() -> config_lib.RunConfig:
    """The RunConfig of the parsed command line."""
    values = {name: FLAGS[name].value for name in config_lib.field_names()}
    values["hidden_sizes"] = tuple(int(v) for v in values["hidden_sizes"])
    values["lr_boundaries"] = tuple(float(v) for v in values["lr_boundaries"])
    values["verbose"] = int(values["verbose"])
    return config_lib.RunConfig(**values)

