"""Whether a run's settings fit its data's size: checked before the data loads (from the sizes the sources read
cheaply, `tfregimes.data.training_set_size`), so that `tfregimes.train` and every point of a sweep are refused
before anything trains, and again once it has loaded, for sources that cannot tell without loading."""

from __future__ import annotations

from tfregimes.config import run_config as config_lib
from tfregimes.data import training_set_size
from tfregimes.training.run_claim import RunConfigError


def check_batch_size(config: config_lib.RunConfig, num_train: int) -> None:
    """Refuses a --batch_size above the `num_train` examples the run measures (after --train_subset)."""
    if config.batch_size > num_train:
        subset = " (--train_subset)" if config.train_subset else ""
        raise RunConfigError(f"--batch_size={config.batch_size} exceeds the {num_train} training examples of "
                             f"{config.dataset}{subset}; training drops the last partial batch, so no step would "
                             f"run. Use --batch_size of at most {num_train}.")


def check_fits_data(config: config_lib.RunConfig) -> None:
    """Refuses, without loading the data, a --train_subset beyond the training split or a --batch_size beyond the
    training examples; passes where the source cannot tell the size without loading (loading checks it)."""
    try:
        available = training_set_size(config.dataset, data_dir=config.data_dir or None, svhn_extra=config.svhn_extra)
    except (KeyError, ValueError):  # An unknown dataset: the flag rules or loading report it.
        return
    if available is None:
        return
    if config.train_subset > available:
        raise RunConfigError(f"--train_subset={config.train_subset} exceeds the {available} training examples of "
                             f"{config.dataset}; use at most {available} (or 0 for all of them).")
    check_batch_size(config, config.train_subset or available)
