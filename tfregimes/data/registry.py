"""Datasets by name: `load_dataset("fashion_mnist")`, `load_dataset("npz:/path/data.npz")`.

Each registry entry is a function (dataset name, LoadRequest) -> LoadedDataset. Sources that hold
their data in memory register a function returning SplitArrays with `register_arrays_source`;
subsetting and normalization are then shared. A name "PREFIX:ARGUMENT" (e.g. npz:PATH) goes to
the prefix source registered under PREFIX.
"""

from __future__ import annotations

from collections.abc import Callable

from tfregimes.base.registry import Registry, UnknownNameError
from tfregimes.data import fingerprint, sizes
from tfregimes.data.base import LoadedDataset, LoadRequest, SplitArrays
from tfregimes.data.normalization import NORMALIZATION_CHOICES
from tfregimes.data.pipeline import InMemoryDataset

DatasetLoader = Callable[[str, LoadRequest], LoadedDataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset")
# prefix -> function (argument after the colon, LoadRequest) -> LoadedDataset
PREFIX_SOURCES: Registry[Callable[[str, LoadRequest], LoadedDataset]] = Registry("dataset prefix")


def register_arrays_source(name: str):
    """Decorator: registers `source(request) -> SplitArrays` as in-memory dataset `name`."""
    def decorator(source: Callable[[LoadRequest], SplitArrays]):
        DATASETS.register(name, lambda dataset_name, request: InMemoryDataset.from_arrays(
            dataset_name, source(request), request))
        return source
    return decorator


def dataset_names() -> list[str]:
    """Registered names; "PREFIX:..." forms such as npz:PATH come on top."""
    return DATASETS.names()


def prefix_forms() -> list[str]:
    return [f"{prefix}:PATH" for prefix in PREFIX_SOURCES.names()]


def _loader(name: str) -> DatasetLoader:
    prefix, colon, argument = name.partition(":")
    if colon and prefix in PREFIX_SOURCES:
        if not argument:
            raise ValueError(f"dataset {name!r} names no path after '{prefix}:'")
        prefix_source = PREFIX_SOURCES.get(prefix)
        return lambda dataset_name, request: prefix_source(argument, request)
    if name in DATASETS:
        return DATASETS.get(name)
    raise UnknownNameError(f"unknown dataset {name!r}; valid names: "
                           f"{', '.join(dataset_names() + prefix_forms())}")


def dataset_fingerprint(name: str, *, data_dir: str | None = None) -> dict:
    """What the content of dataset `name` (as `load_dataset(name, data_dir=data_dir)` reads it) is, without loading
    it: tfregimes.data.fingerprint. Raises DatasetUnavailableError for an npz:PATH file that does not exist."""
    _loader(name)  # An unknown name fails as loading it would.
    prefix, colon, argument = name.partition(":")
    if colon and prefix in fingerprint.PREFIX_FINGERPRINTS:
        content = fingerprint.PREFIX_FINGERPRINTS.get(prefix)(argument, data_dir)
    else:
        content = fingerprint.FINGERPRINTS.get(name)(data_dir)
    return fingerprint.finish(name, content)


def training_set_size(name: str, *, data_dir: str | None = None, svhn_extra: bool = False) -> int | None:
    """How many training examples dataset `name` holds (the whole training split, with SVHN's extra split when
    `svhn_extra`), read without loading it: tfregimes.data.sizes. None where that cannot be told without loading."""
    _loader(name)
    prefix, colon, argument = name.partition(":")
    if colon and prefix in sizes.PREFIX_TRAIN_SIZES:
        return sizes.PREFIX_TRAIN_SIZES.get(prefix)(argument, data_dir)
    return sizes.TRAIN_SIZES.get(name)(data_dir, svhn_extra)


def check_dataset_name(name: str) -> None:
    """Fails like `load_dataset` would on an unknown name, without loading anything."""
    _loader(name)


def load_dataset(name: str, *, data_dir: str | None = None, train_subset: int | None = None,
                 normalization: str = "auto", seed: int = 0, svhn_extra: bool = False,
                 download: bool = False, confusion_size: int = 0, validation_split: float = 0.0) -> LoadedDataset:
    """Loads dataset `name` (see `dataset_names()`, or npz:PATH).

    Args:
      data_dir: where the files are: the TFDS data_dir, or the directory of Fashion-MNIST's IDX
        files. None: the defaults (~/tensorflow_datasets; /usr/share/datasets/fashion-mnist).
      train_subset: keep a fixed random subset of this many training examples (chosen by `seed`).
      normalization: "auto" (the dataset's default), "none", "per_pixel" or "per_channel".
        Statistics always come from the full training split.
      seed: chooses the training subset.
      svhn_extra: svhn_cropped only: add the 531k "extra" images to training (seed 000, A.2).
      download: let TFDS download and prepare missing data (slow; needs a network).
      confusion_size: append this many images from outside the training subset with random labels (seed 004's
        confusion set, chosen by `seed`; tfregimes.data.confusion). Trained on, left out of the "train" split's
        evaluation; in-memory datasets with a `train_subset` only.
      validation_split: hold this share of the training examples (after `train_subset`) out as the "validation"
        split (chosen by `seed`, its own random stream): never trained on, for choosing hyperparameters without
        reading the test split. In-memory datasets only.

    Raises:
      DatasetUnavailableError: the data is not on this machine; the message says how to get it.
      UnknownNameError / ValueError: a bad name or argument.
    """
    loader = _loader(name)
    if normalization not in NORMALIZATION_CHOICES:
        raise UnknownNameError(f"unknown normalization {normalization!r}; valid names: "
                               f"{', '.join(NORMALIZATION_CHOICES)}")
    if svhn_extra and name != "svhn_cropped":
        raise ValueError(f"svhn_extra only applies to svhn_cropped, not to {name}")
    request = LoadRequest(data_dir=data_dir, train_subset=train_subset,
                          normalization=normalization, seed=seed, svhn_extra=svhn_extra,
                          download=download, confusion_size=confusion_size, validation_split=validation_split)
    loaded = loader(name, request)
    if loaded.info.num_confusion != confusion_size:  # A streamed source that has no confusion set.
        raise ValueError(f"{name} is streamed from disk: a confusion set needs an in-memory dataset")
    if validation_split and not loaded.info.num_validation:
        raise ValueError(f"{name} is streamed from disk: a validation split needs an in-memory dataset")
    return loaded
