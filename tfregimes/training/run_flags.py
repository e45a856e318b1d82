"""The flags of `python -m tfregimes.train`, defined once on any absl FlagValues: the CLI's global FLAGS, and the
private instance on which a sweep checks its points (`tfregimes.training.run_flag_rules.parse_run_config`), so that
a library caller's own flags (a script's --batch_size) are never touched.

Every flag is a field of `tfregimes.config.RunConfig` with the same name. Values that come from a registry are
enums of that registry's names, and rules across flags are validators (`run_flag_rules`), so a bad flag fails at
parse time, naming the flag and the valid values, before any data or model is built.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

from absl import flags

from tfregimes.base.registry import UnknownNameError
from tfregimes.config import run_config as config_lib
from tfregimes.config.options import flag_rules
from tfregimes.data import (
    AUGMENTATIONS,
    NORMALIZATION_CHOICES,
    check_dataset_name,
    dataset_names,
    prefix_forms,
)
from tfregimes.diagnostics.adapters import TRAINING_DIAGNOSTICS
from tfregimes.diagnostics.dynamics.margins import NORMALIZATIONS as MARGIN_NORMALIZATIONS
from tfregimes.models import STEMS, model_names
from tfregimes.models.decay import DECAY_SCOPES
from tfregimes.optim import OPTIMIZERS, SCHEDULES, parse_boundary
from tfregimes.optim.exploration import DECAY_MODES
from tfregimes.steps import REGULARIZERS, FisherRegularizedModel
from tfregimes.training.distribution import PRECISIONS, STRATEGIES

_DEFAULT = config_lib.RunConfig()
DATASET_CHOICES = ", ".join([*dataset_names(), *prefix_forms()])


def is_dataset_name(name: str) -> bool:
    try:
        check_dataset_name(name)
    except (UnknownNameError, ValueError):
        return False
    return True


class BoundFlags:
    """absl's DEFINE_* and validators with `flag_values=` filled in: the definitions below read as absl's own."""

    def __init__(self, flag_values: flags.FlagValues):
        self._flag_values = flag_values

    def __getattr__(self, name: str):
        return functools.partial(getattr(flags, name), flag_values=self._flag_values)


def _csv(values) -> list[str]:
    return [config_lib.format_flag_value(v) for v in values]


def _no_group(title: str) -> None:
    """A FlagValues without --help groups (the private one)."""


def define_run_flags(flag_values: flags.FlagValues, begin_group: Callable[[str], None] = _no_group) -> None:
    """Defines every training flag on `flag_values`; `begin_group(title)` is called before each --help group."""
    fv = BoundFlags(flag_values)

    # --- Data -----------------------------------------------------------------------------------------------------
    begin_group("Data")
    fv.DEFINE_string(
        "dataset", _DEFAULT.dataset,
        f"Dataset: one of {DATASET_CHOICES} (a .npz file with arrays x_train, y_train, x_test, y_test; "
        "images NHWC or flat).")
    fv.DEFINE_string("data_dir", _DEFAULT.data_dir,
                     "Directory of the data (TFDS data_dir; for fashion_mnist the four IDX files). Empty: defaults.")
    fv.DEFINE_boolean("download", _DEFAULT.download,
                      "Let TFDS download a dataset that is not in --data_dir (needs internet).")
    fv.DEFINE_integer("train_subset", _DEFAULT.train_subset,
                      "Train on a fixed random subset of N training examples (seeded by --seed); 0: all.",
                      lower_bound=0)
    fv.DEFINE_integer("confusion_size", _DEFAULT.confusion_size,
                      "Seed 004's confusion set: append N training images from outside --train_subset with random "
                      "labels (chosen by --seed); trained on, left out of the train_* metrics (confusion_* in "
                      "metrics.json). Needs --train_subset.", lower_bound=0)
    fv.DEFINE_float("validation_split", _DEFAULT.validation_split,
                    "Hold this share of the training examples (after --train_subset) out of training, chosen by "
                    "--seed: metrics.json adds validation_loss/validation_accuracy, for choosing hyperparameters "
                    "without the test split. 0: none.", lower_bound=0.0, upper_bound=0.9)
    fv.DEFINE_enum("normalization", _DEFAULT.normalization, list(NORMALIZATION_CHOICES),
                   "Input normalization; auto: the dataset's default (per_pixel for CIFAR/SVHN, per_channel for "
                   "MNIST-like and ImageNet, none for npz:, mnist1d and synthetic). Statistics from the full "
                   "training set.")
    fv.DEFINE_enum("augment", _DEFAULT.augment, AUGMENTATIONS.names(),
                   "Training-time augmentation: crop1_flip/crop4_flip pad by 1/4 pixels, random crop and flip "
                   "(seed 004 scenario II); imagenet is seed 000 appendix A.2's recipe.")
    fv.DEFINE_boolean("svhn_extra", _DEFAULT.svhn_extra,
                      "svhn_cropped only: add the 531k `extra` split to training, as seed 000 does.")

    # --- Model ----------------------------------------------------------------------------------------------------
    begin_group("Model")
    fv.DEFINE_enum("model", _DEFAULT.model, model_names(),
                   "Architecture (python -m tfregimes.models lists them with parameter counts).")
    fv.DEFINE_list("hidden_sizes", _csv(_DEFAULT.hidden_sizes), "Hidden layer widths of --model=mlp.")
    fv.DEFINE_float("dropout", _DEFAULT.dropout, "Dropout rate of models that have dropout.",
                    lower_bound=0.0, upper_bound=0.99)
    fv.DEFINE_integer("wrn_depth", _DEFAULT.wrn_depth, "Depth of --model=wrn (6n + 4).", lower_bound=10)
    fv.DEFINE_integer("wrn_width", _DEFAULT.wrn_width, "Widening factor of --model=wrn.", lower_bound=1)
    fv.DEFINE_integer("ghost_batch_size", _DEFAULT.ghost_batch_size,
                      "Ghost batch normalization: normalize slices of this many examples (seed 002 uses 64). "
                      "0: ordinary batch normalization.", lower_bound=0)
    fv.DEFINE_boolean("zero_init_residual", _DEFAULT.zero_init_residual,
                      "Start the last BN gamma of every residual block at 0 (seed 000 A.2, ResNet-50).")
    fv.DEFINE_enum("stem", _DEFAULT.stem, list(STEMS),
                   "ResNet-18/50 stem: imagenet (7x7/2 conv + max-pool), cifar (3x3/1), auto (cifar up to 64 px).")
    fv.DEFINE_float("bn_momentum", _DEFAULT.bn_momentum,
                    "Batch-norm moving-average momentum (Keras convention; 0.9 = PyTorch's 0.1).",
                    lower_bound=0.0, upper_bound=1.0)
    fv.DEFINE_float("bn_epsilon", _DEFAULT.bn_epsilon, "Batch-norm epsilon.", lower_bound=0.0)
    fv.DEFINE_enum("weight_decay_scope", _DEFAULT.weight_decay_scope, list(DECAY_SCOPES),
                   "Which weights --weight_decay applies to: all; exclude_bn (no decay on normalization "
                   "parameters; the FC bias decays: seed 000); exclude_bn_bias (nor on biases). LARS honours it too.")

    # --- Optimization ---------------------------------------------------------------------------------------------
    begin_group("Optimizer and schedule")
    fv.DEFINE_integer("epochs", _DEFAULT.epochs, "Number of training epochs.", lower_bound=1)
    # The stop at a training target (tfregimes.training.target_stop): the rule docs/training.md states.
    fv.DEFINE_float("stop_at_train_loss", _DEFAULT.stop_at_train_loss,
                    "End the run at the end of the first checked epoch whose clean training loss is <= this, e.g. "
                    "0.05: the loss of one inference-mode pass over the clean training examples (no augmentation, "
                    "the run's normalization), as metrics.json's train_loss. metrics.json's `stop` records the "
                    "criterion, reached_target, stopped_at_epoch and the clean loss and accuracy read. 0: no stop.")
    fv.register_validator("stop_at_train_loss", lambda target: math.isfinite(target) and target >= 0.0,
                          message="must be a positive finite loss (e.g. 0.05), or 0 for no stop")
    fv.DEFINE_float("stop_at_train_accuracy", _DEFAULT.stop_at_train_accuracy,
                    "As --stop_at_train_loss, at the first checked epoch whose clean training accuracy is >= this "
                    "fraction, e.g. 0.99 (seed 003 trains to 99 %). 0: no stop.")
    fv.register_validator("stop_at_train_accuracy", lambda target: 0.0 <= target <= 1.0,  # NaN fails too.
                          message="must be a fraction in (0, 1] (0.99 for 99 %), or 0 for no stop")
    fv.DEFINE_integer("stop_check_every", _DEFAULT.stop_check_every,
                      "Check the stop's target every k epochs, and at the last (each check is one inference pass). "
                      "Only with --stop_at_train_loss or --stop_at_train_accuracy.", lower_bound=1)
    fv.DEFINE_integer("stop_check_examples", _DEFAULT.stop_check_examples,
                      "Clean training examples the stop's check reads: a fixed subset chosen by --seed when the "
                      "training set is larger, else all of them. 0: the whole training set. Only with "
                      "--stop_at_train_loss or --stop_at_train_accuracy.", lower_bound=0)
    fv.DEFINE_integer("batch_size", _DEFAULT.batch_size, "Global training batch size.", lower_bound=1)
    fv.DEFINE_enum("optimizer", _DEFAULT.optimizer, OPTIMIZERS.names(), "Optimizer.")
    fv.DEFINE_float("learning_rate", _DEFAULT.learning_rate, "Base learning rate.", lower_bound=0.0)
    fv.DEFINE_float("momentum", _DEFAULT.momentum, "Momentum μ (Keras convention v ← μv − η∇f).",
                    lower_bound=0.0, upper_bound=0.999999)
    fv.DEFINE_boolean("nesterov", _DEFAULT.nesterov, "Nesterov momentum (sgd).")
    fv.DEFINE_float("weight_decay", _DEFAULT.weight_decay,
                    "Coupled L2 weight decay λ: λ·w is added to the gradient (the gradient of λ/2·‖w‖²).",
                    lower_bound=0.0)
    fv.DEFINE_enum("lr_schedule", _DEFAULT.lr_schedule, SCHEDULES.names(), "Learning-rate schedule.")
    fv.DEFINE_list("lr_boundaries", _csv(_DEFAULT.lr_boundaries),
                   "Where the step schedule multiplies the learning rate by --lr_decay: epochs (150,225) or shares of "
                   "the run (50%,75%: of --epochs, or of --transition_epoch with two phases), which follow an "
                   "overridden --epochs.")
    fv.DEFINE_float("lr_decay", _DEFAULT.lr_decay, "Factor of each step of the step schedule.",
                    lower_bound=0.0, upper_bound=1.0)
    fv.DEFINE_float("min_lr", _DEFAULT.min_lr, "Final learning rate of cosine/poly/explore; floor of plateau.",
                    lower_bound=0.0)
    fv.DEFINE_float("lr_power", _DEFAULT.lr_power, "Power of the poly schedule.", lower_bound=0.0)
    fv.DEFINE_float("warmup_epochs", _DEFAULT.warmup_epochs,
                    "Gradual linear warm-up (Goyal et al. 2017, as seed 000 uses it) over this many epochs: from the "
                    "unscaled --learning_rate to the scaled one with --reference_batch_size, else from 0.",
                    lower_bound=0.0)
    fv.DEFINE_integer("reference_batch_size", _DEFAULT.reference_batch_size,
                      "Linear scaling rule: the peak learning rate is --learning_rate * --batch_size / this. 0: off.",
                      lower_bound=0)
    fv.DEFINE_float("decoupled_weight_decay", _DEFAULT.decoupled_weight_decay,
                    "Keras' decoupled weight decay (sgd, adam, adamw: w <- w - lr*wd*w); separate from the coupled "
                    "--weight_decay.", lower_bound=0.0)
    fv.DEFINE_float("global_clipnorm", _DEFAULT.global_clipnorm,
                    "Clip the gradients by their global norm (clip_by_global_norm). 0: no clipping.", lower_bound=0.0)
    fv.DEFINE_integer("grad_accum_steps", _DEFAULT.grad_accum_steps,
                      "Large batch on limited memory: average the gradients of this many micro-batches of "
                      "--batch_size / N examples into one update (batch norm sees the micro-batches).", lower_bound=1)
    fv.DEFINE_float("lars_trust_coefficient", _DEFAULT.lars_trust_coefficient,
                    "LARS trust coefficient (You et al. 2017); LARS applies --weight_decay inside its update.",
                    lower_bound=0.0)

    # --- Run-time exploration and decay (seed 000) -----------------------------------------------------------------
    begin_group("Regimes: run-time exploration and decay")
    fv.DEFINE_integer("flat_window", _DEFAULT.flat_window,
                      "--lr_schedule=explore: the training loss has flattened when its relative improvement over this "
                      "many epochs is below --flat_tolerance.", lower_bound=1)
    fv.DEFINE_float("flat_tolerance", _DEFAULT.flat_tolerance, "See --flat_window.", lower_bound=0.0)
    fv.DEFINE_integer("extra_exploration_epochs", _DEFAULT.extra_exploration_epochs,
                      "--lr_schedule=explore: epochs kept at the large learning rate after the loss flattened, before "
                      "the decay starts.", lower_bound=0)
    fv.DEFINE_enum("exploration_decay", _DEFAULT.exploration_decay, list(DECAY_MODES),
                   "--lr_schedule=explore: step (x --lr_decay every --decay_interval_epochs, down to --min_lr), "
                   "linear or cosine (to --min_lr over --transition_epochs).")
    fv.DEFINE_float("decay_interval_epochs", _DEFAULT.decay_interval_epochs,
                    "Epochs between the step decays of --exploration_decay=step.", lower_bound=0.0)
    fv.DEFINE_float("transition_epochs", _DEFAULT.transition_epochs,
                    "Length of the linear/cosine decay of --exploration_decay.", lower_bound=0.0)

    # Also decided at run time: the learning rate divided when the training loss plateaus (seed 004 §7.1).
    fv.DEFINE_integer("plateau_patience", _DEFAULT.plateau_patience,
                      "--lr_schedule=plateau: multiply the learning rate by --plateau_factor after this many epochs "
                      "in a row whose training loss did not improve on the best by --plateau_threshold (relative).",
                      lower_bound=1)
    fv.DEFINE_float("plateau_factor", _DEFAULT.plateau_factor,
                    "--lr_schedule=plateau: factor of each reduction (seed 004 divides by 10).",
                    lower_bound=1e-12, upper_bound=1.0 - 1e-12)
    fv.DEFINE_float("plateau_threshold", _DEFAULT.plateau_threshold,
                    "--lr_schedule=plateau: an epoch improves when its loss < best * (1 - this).",
                    lower_bound=0.0, upper_bound=1.0 - 1e-12)

    # --- Two-phase training (seed 001 §4) --------------------------------------------------------------------------
    begin_group("Regimes: two phases")
    fv.DEFINE_integer("transition_epoch", _DEFAULT.transition_epoch,
                      "Start a second phase at this epoch, with a fresh --phase2_optimizer and its own schedule. "
                      "0: a single phase.", lower_bound=0)
    fv.DEFINE_enum("phase2_optimizer", _DEFAULT.phase2_optimizer, OPTIMIZERS.names(), "Optimizer of phase 2.")
    fv.DEFINE_float("phase2_learning_rate", _DEFAULT.phase2_learning_rate, "Learning rate of phase 2.",
                    lower_bound=0.0)
    fv.DEFINE_float("phase2_momentum", _DEFAULT.phase2_momentum, "Momentum of phase 2 (sgd, lars).",
                    lower_bound=0.0, upper_bound=0.999999)
    fv.DEFINE_boolean("phase2_nesterov", _DEFAULT.phase2_nesterov, "Nesterov momentum in phase 2 (sgd).")
    fv.DEFINE_enum("phase2_lr_schedule", _DEFAULT.phase2_lr_schedule,
                   [name for name in SCHEDULES.names() if name not in ("explore", "plateau")],
                   "Learning-rate schedule of phase 2.")
    fv.DEFINE_list("phase2_lr_boundaries", _csv(_DEFAULT.phase2_lr_boundaries),
                   "Step-schedule boundaries of phase 2, in epochs of the whole run.")
    fv.DEFINE_float("phase2_decoupled_weight_decay", _DEFAULT.phase2_decoupled_weight_decay,
                    "Decoupled weight decay of phase 2 (e.g. AdamW).", lower_bound=0.0)

    # --- Regularized training steps (docs/training.md, "Regularized training") -----------------------------------
    begin_group("Regimes: regularized steps")
    fv.DEFINE_enum("regularizer", _DEFAULT.regularizer, REGULARIZERS.names(),
                   "Training step: none; fisher (Fisher-trace regularizer, seed 004 Algorithm 1); proximal (Keskar's "
                   "conservative training, seed 003 E.2); sam (Sharpness-Aware Minimization, Foret et al. 2021).")
    fv.DEFINE_float("fisher_alpha", _DEFAULT.fisher_alpha, "fisher: step α of the perturbation w − αg_i.",
                    lower_bound=0.0)
    fv.DEFINE_float("fisher_beta", _DEFAULT.fisher_beta, "fisher: weight β of R_α (the paper's grid: 10-125).",
                    lower_bound=0.0)
    fv.DEFINE_integer("fisher_subbatches", _DEFAULT.fisher_subbatches,
                      "fisher: M, sub-batches of the global batch (4, 8, 16); each of n replicas takes M/n.",
                      lower_bound=1)
    fv.DEFINE_enum("fisher_batch_loss", _DEFAULT.fisher_batch_loss, list(FisherRegularizedModel.BATCH_LOSS_CHOICES),
                   "fisher, with batch norm: L(B, w) on the whole batch as the plain step does (3 passes), or the "
                   "mean of the M sub-batch passes (2 passes, ~2/3 the cost; β = 0 is then not the plain step).")
    fv.DEFINE_float("clip_global_norm", _DEFAULT.clip_global_norm,
                    "fisher: τ, clip of the total gradient's global norm across replicas (1, 5, 10, 15); 0: none.",
                    lower_bound=0.0)
    fv.DEFINE_float("proximal_lambda", _DEFAULT.proximal_lambda, "proximal: λ of (λ/2)‖x − x_k‖².", lower_bound=0.0)
    fv.DEFINE_integer("proximal_steps", _DEFAULT.proximal_steps,
                      "proximal: K, iterations of the optimizer on the proximal sub-problem per batch.",
                      lower_bound=1)
    fv.DEFINE_float("sam_rho", _DEFAULT.sam_rho, "sam: radius ρ of the ascent step.", lower_bound=0.0)
    fv.DEFINE_integer("sam_subbatches", _DEFAULT.sam_subbatches,
                      "sam: m-sharpness, one ascent per sub-batch (1: the whole batch).", lower_bound=1)
    fv.DEFINE_integer("regularizer_start_epoch", _DEFAULT.regularizer_start_epoch,
                      "The regularizer is on from this epoch (0-based)...", lower_bound=0)
    fv.DEFINE_integer("regularizer_end_epoch", _DEFAULT.regularizer_end_epoch,
                      "...to this one (exclusive); 0: to the end. Off, the step is the plain step.", lower_bound=0)

    # --- Distribution and precision ---------------------------------------------------------------------------------
    begin_group("Distribution and precision")
    fv.DEFINE_enum("strategy", _DEFAULT.strategy, list(STRATEGIES),
                   "tf.distribute strategy: default (one device), mirrored (all GPUs, else the logical CPU devices "
                   "of --num_cpu_devices), or multi_worker (MultiWorkerMirroredStrategy over the cluster in the "
                   "TF_CONFIG environment variable; run the same command on every worker). --batch_size is the "
                   "global batch, split across replicas.")
    fv.register_validator("strategy", lambda name: name != "multi_worker" or "TF_CONFIG" in os.environ,
                          message="multi_worker needs the cluster in the TF_CONFIG environment variable")
    fv.DEFINE_integer("num_cpu_devices", _DEFAULT.num_cpu_devices,
                      "Split the CPU into N logical devices (to try --strategy=mirrored without GPUs). 0: one device.",
                      lower_bound=0)
    fv.DEFINE_enum("precision", _DEFAULT.precision, list(PRECISIONS),
                   "Keras dtype policy; mixed_float16 adds dynamic loss scaling.")
    fv.DEFINE_boolean("jit_compile", _DEFAULT.jit_compile,
                      "XLA-compile the train step; needs --nodeterministic (op determinism turns XLA off). On this "
                      "2-core CPU it was slower for ResNet-20; it fails under mirrored on logical CPU devices.")

    # --- Diagnostics during training (docs/diagnostics.md) ------------------------------------------------------
    begin_group("Diagnostics during training")
    fv.DEFINE_list("diagnostics", list(_DEFAULT.diagnostics),
                   f"Training-time diagnostics, any of {', '.join(TRAINING_DIAGNOSTICS.names())}: angular update "
                   "(seed 002 eq. 11), effective LR and tuning factor (eq. 9, 10, 27), momentum scale/alignment "
                   "(seed 001 eq. 3, 4), first-order margins (seed 000 A.1).")
    fv.DEFINE_integer("diagnostics_every", _DEFAULT.diagnostics_every,
                      "Measure the diagnostics every k epochs (and at the last).", lower_bound=1)
    fv.DEFINE_boolean("scale_invariant_only", _DEFAULT.scale_invariant_only,
                      "angular/elr over the scale-invariant weights only (those followed by normalization).")
    fv.DEFINE_integer("momentum_probe_examples", _DEFAULT.momentum_probe_examples,
                      "Training examples of the probe gradient ∇f in the momentum scale, measured then at every "
                      "--diagnostics_every epochs. 0: 1 % of the examples trained on between measurements (at least "
                      "one batch, at most 1024), measured as often as that budget allows.", lower_bound=0)
    fv.DEFINE_integer("margin_samples", _DEFAULT.margin_samples,
                      "Training examples whose margins are measured.", lower_bound=1)
    fv.DEFINE_enum("margin_normalization", _DEFAULT.margin_normalization, list(MARGIN_NORMALIZATIONS),
                   "Divide margins by the square root of the total variation of the inputs (seed 000 A.1) or not.")
    fv.DEFINE_string("save_margins", _DEFAULT.save_margins,
                     "Save the per-example margins to this .npy file ({epoch} in the name: one file per epoch).")
    fv.register_validator("diagnostics", lambda names: all(name in TRAINING_DIAGNOSTICS for name in names),
                          message=f"must be a comma-separated list of {', '.join(TRAINING_DIAGNOSTICS.names())}")

    # --- Run ------------------------------------------------------------------------------------------------------
    begin_group("Run")
    fv.DEFINE_integer("seed", _DEFAULT.seed, "Seed of initialization, data order and augmentation.")
    fv.DEFINE_string("model_dir", _DEFAULT.model_dir,
                     "Run directory. Empty: runs/<dataset>_<model>_<timestamp>. An existing run directory is resumed "
                     "from its last checkpoint.")
    fv.DEFINE_integer("eval_every", _DEFAULT.eval_every, "Evaluate on the test split every N epochs.", lower_bound=1)
    fv.DEFINE_integer("eval_batch_size", _DEFAULT.eval_batch_size, "Batch size of evaluation passes.", lower_bound=1)
    fv.DEFINE_float("checkpoint_every_secs", _DEFAULT.checkpoint_every_secs,
                    "Checkpoint (with history.csv and progress.json) at the first epoch's end after this many seconds "
                    "since the last checkpoint, and at the last epoch of each phase; a kill loses at most this much "
                    "training plus an epoch (it is retrained to the same numbers on resume). 0: after every epoch.",
                    lower_bound=0.0)
    fv.DEFINE_boolean("deterministic", _DEFAULT.deterministic,
                      "Deterministic TF ops, so a repeated or resumed run gives the same numbers on the same machine.")
    fv.DEFINE_enum("verbose", str(_DEFAULT.verbose), ["0", "1", "2"],
                   "Keras fit verbosity: 1 progress bar, 2 one line per epoch, 0 silent.")
    fv.DEFINE_string("profile_batch", _DEFAULT.profile_batch,
                     "N,M: record a TensorBoard profile of training batches N to M (needs tensorboard-plugin-profile "
                     "to view). Empty: no profile.")

    # Each option's help names the choice that reads it, from the one table of them.
    for flag, _, requirement in flag_rules():
        flag_values[flag].help += f" Only with {requirement}."


def config_from_flags(flag_values: flags.FlagValues) -> config_lib.RunConfig:
    """The RunConfig of the command line `flag_values` parsed."""
    values = {name: flag_values[name].value for name in config_lib.field_names()}
    values["hidden_sizes"] = tuple(int(v) for v in values["hidden_sizes"])
    values["lr_boundaries"] = tuple(parse_boundary(v) for v in values["lr_boundaries"])
    values["phase2_lr_boundaries"] = tuple(float(v) for v in values["phase2_lr_boundaries"])
    values["diagnostics"] = tuple(values["diagnostics"])
    values["verbose"] = int(values["verbose"])
    return config_lib.RunConfig(**values)
