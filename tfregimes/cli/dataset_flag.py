"""The --dataset flag's rule, shared by the CLIs that load data (train, evaluate, benchmark). Apart from
`common` because the dataset registry imports TensorFlow, which results and report start without."""

from __future__ import annotations

from absl import flags

from tfregimes.base.registry import UnknownNameError
from tfregimes.data import check_dataset_name, dataset_names, prefix_forms

DATASET_CHOICES = ", ".join([*dataset_names(), *prefix_forms()])


def is_dataset_name(name: str) -> bool:
    try:
        check_dataset_name(name)
    except (UnknownNameError, ValueError):
        return False
    return True


def register_dataset_validator(flag_name: str = "dataset") -> None:
    flags.register_validator(flag_name, is_dataset_name, message=f"must be one of {DATASET_CHOICES}")
