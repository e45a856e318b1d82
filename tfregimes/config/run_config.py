"""The resolved settings of one training run, and their round trip through a flagfile.

`RunConfig` is what the library takes; only `tfregimes/training/run_flags.py` builds it from absl flags (on the
CLI's FLAGS, or on the private FlagValues a sweep checks its points on). Its
field names are the flag names, so a run directory's `flags.cfg` written by `to_flagfile` repeats the run.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from tfregimes.base.run_files import flagfile_text, parse_flagfile

# Settings that do not change what a run computes: they are left out when a resumed run is compared with the
# flags it was started with.
PRESENTATION_FIELDS = frozenset({"model_dir", "verbose", "profile_batch", "checkpoint_every_secs"})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    # Data.
    dataset: str = "digits"
    data_dir: str = ""
    download: bool = False
    train_subset: int = 0  # 0: the whole training split.
    confusion_size: int = 0  # Random-labelled extra training images (seed 004 Scenario I); 0: none.
    validation_split: float = 0.0  # Share of the training examples held out as a validation split; 0: none.
    normalization: str = "auto"
    augment: str = "none"
    svhn_extra: bool = False
    # Model.
    model: str = "cnn_small"
    hidden_sizes: tuple[int, ...] = (256, 128)
    dropout: float = 0.0
    wrn_depth: int = 28
    wrn_width: int = 10
    ghost_batch_size: int = 0  # 0: ordinary batch normalization.
    zero_init_residual: bool = False
    stem: str = "auto"
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    weight_decay_scope: str = "all"
    # Optimization.
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"
    learning_rate: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0  # No regularization unless asked for: flagfiles set their paper's.
    lr_schedule: str = "step"
    # Epochs (floats) or shares of the first phase ("50%", text), so that a shorter --epochs moves them along.
    lr_boundaries: tuple[float | str, ...] = ("50%", "83.33%")
    lr_decay: float = 0.1
    min_lr: float = 0.0
    lr_power: float = 1.0
    warmup_epochs: float = 0.0
    reference_batch_size: int = 0  # 0: no linear scaling of the learning rate.
    decoupled_weight_decay: float = 0.0
    global_clipnorm: float = 0.0  # 0: no clipping.
    grad_accum_steps: int = 1  # Micro-batches of batch_size / grad_accum_steps per update.
    lars_trust_coefficient: float = 0.001
    # Run-time exploration and decay (--lr_schedule=explore).
    flat_window: int = 5
    flat_tolerance: float = 0.01
    extra_exploration_epochs: int = 10
    exploration_decay: str = "step"
    decay_interval_epochs: float = 10.0
    transition_epochs: float = 10.0
    # Learning rate divided when the training loss plateaus (--lr_schedule=plateau, seed 004 §7.1).
    plateau_patience: int = 5
    plateau_factor: float = 0.1
    plateau_threshold: float = 1e-4
    # Two-phase training.
    transition_epoch: int = 0  # 0: a single phase.
    phase2_optimizer: str = "sgd"
    phase2_learning_rate: float = 0.001
    phase2_momentum: float = 0.9
    phase2_nesterov: bool = False
    phase2_lr_schedule: str = "constant"
    phase2_lr_boundaries: tuple[float, ...] = ()
    phase2_decoupled_weight_decay: float = 0.0
    # Regularized training steps (tfregimes/regimes).
    regularizer: str = "none"
    fisher_alpha: float = 1e-4
    fisher_beta: float = 10.0
    fisher_subbatches: int = 8
    clip_global_norm: float = 10.0
    fisher_batch_loss: str = "whole"
    proximal_lambda: float = 1e-3
    proximal_steps: int = 3
    sam_rho: float = 0.05
    sam_subbatches: int = 1
    regularizer_start_epoch: int = 0
    regularizer_end_epoch: int = 0  # 0: to the end of training.
    # End at the first checked epoch whose clean training loss is at most / accuracy at least this (seed 003 and 004
    # compare minima at a training target; tfregimes.training.target_stop); 0: off. At most one of the two.
    stop_at_train_loss: float = 0.0
    stop_at_train_accuracy: float = 0.0
    stop_check_every: int = 1  # Check every k epochs, and at the last.
    stop_check_examples: int = 10_000  # Clean training examples a check reads (a subset by --seed); 0: all of them.
    # Distribution and precision.
    strategy: str = "default"
    num_cpu_devices: int = 0  # 0: leave the CPU as one device.
    precision: str = "float32"
    jit_compile: bool = False
    # Diagnostics during training.
    diagnostics: tuple[str, ...] = ()
    diagnostics_every: int = 1
    scale_invariant_only: bool = False
    momentum_probe_examples: int = 0  # 0: 1 % of the examples between measurements (diagnostics/adapters).
    margin_samples: int = 1024
    margin_normalization: str = "total_variation"
    save_margins: str = ""
    # Run.
    seed: int = 0
    model_dir: str = ""
    eval_every: int = 1
    eval_batch_size: int = 512
    # Seconds of training between checkpoints (and history.csv, progress.json); 0: after every epoch. A fit's last
    # epoch is always checkpointed.
    checkpoint_every_secs: float = 30.0
    deterministic: bool = True
    verbose: int = 1
    profile_batch: str = ""

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def format_flag_value(value: Any) -> str:
    """A value as absl parses it back: booleans as true/false, sequences comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(format_flag_value(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_flagfile(config: RunConfig, command: list[str] | None = None) -> str:
    """Flagfile text that repeats the run. `model_dir` is written as a comment, so repeating makes a new run."""
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    return flagfile_text({name: format_flag_value(getattr(config, name)) for name in field_names()},
                         comments=[f"Resolved flags of a tfregimes run, written {stamp}.",
                                   "Repeat it with: python -m tfregimes.train --flagfile=THIS_FILE"],
                         command=command, commented_out={"model_dir"})


def parse_flagfile_values(text: str) -> dict[str, str]:
    """The `--name=value` lines of a flagfile written by `to_flagfile` (comments skipped), values as strings."""
    return parse_flagfile(text).values
