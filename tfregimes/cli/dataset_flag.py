"""The --dataset flag's rule on the global FLAGS, shared by the CLIs that load data (evaluate, benchmark; train gets
it with the other training rules). Apart from `common` because the dataset registry imports TensorFlow, which
results and report start without."""

from __future__ import annotations

from absl import flags

from tfregimes.training.run_flags import DATASET_CHOICES, is_dataset_name


def register_dataset_validator(flag_name: str = "dataset") -> None:
    flags.register_validator(flag_name, is_dataset_name, message=f"must be one of {DATASET_CHOICES}")
