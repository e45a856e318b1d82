"""Datasets by name as epoch-seeded tf.data pipelines.

    ds = load_dataset("fashion_mnist", train_subset=10_000, seed=0)
    model.fit(ds.train(128, seed=0, augment="crop4_flip", start_epoch=k, num_epochs=E),
              initial_epoch=k, epochs=E, steps_per_epoch=ds.steps_per_epoch(128),
              validation_data=ds.evaluation("test", 512))

Importing this package registers every source; tensorflow_datasets is only imported when a TFDS
dataset is loaded.
"""

from tfregimes.data import fashion_mnist, imagenet, sources, tfds_sources  # noqa: F401  (registration)
from tfregimes.data.augmentation import AUGMENTATIONS, Augmentation
from tfregimes.data.base import DatasetInfo, LoadedDataset, SplitArrays
from tfregimes.data.errors import DatasetUnavailableError, InvalidDatasetError
from tfregimes.data.fingerprint import differences as fingerprint_differences
from tfregimes.data.normalization import NORMALIZATION_CHOICES, NORMALIZATIONS
from tfregimes.data.registry import (
    DATASETS,
    check_dataset_name,
    dataset_fingerprint,
    dataset_names,
    load_dataset,
    prefix_forms,
    training_set_size,
)

__all__ = [
    "AUGMENTATIONS", "Augmentation", "DATASETS", "DatasetInfo", "DatasetUnavailableError", "InvalidDatasetError",
    "LoadedDataset", "NORMALIZATIONS", "NORMALIZATION_CHOICES", "SplitArrays",
    "check_dataset_name", "dataset_fingerprint", "dataset_names", "fingerprint_differences", "load_dataset",
    "prefix_forms", "training_set_size",
]
