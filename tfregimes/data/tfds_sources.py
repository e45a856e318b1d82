"""TensorFlow Datasets sources held in memory: cifar10, cifar100, svhn_cropped, mnist.

With download=False, `tfds.load` fails within a second when the prepared data is missing; every
failure becomes a DatasetUnavailableError whose one paragraph says how to provide the data.
(Offline with download=True, TFDS retries for minutes before failing.) tensorflow_datasets is
imported lazily: importing it takes seconds.
"""

from __future__ import annotations

import os

import numpy as np

from tfregimes.data.base import LoadRequest, SplitArrays
from tfregimes.data.errors import DatasetUnavailableError
from tfregimes.data.fingerprint import FINGERPRINTS
from tfregimes.data.registry import register_arrays_source
from tfregimes.data.sizes import TRAIN_SIZES

_MATERIALIZE_BATCH = 4096


def tfds_data_dir(data_dir: str | None) -> str:
    """Where TFDS looks: data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def unavailable_message(tfds_name: str, request: LoadRequest, error: Exception,
                        hint: str = "") -> str:
    """One paragraph: which dataset, where TFDS looked, how to provide it."""
    directory = tfds_data_dir(request.data_dir)
    cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    attempt = ("downloading and preparing it failed" if request.download
               else "no prepared copy was found and downloading is off")
    if tfds_name == "imagenet2012":
        remedy = (f"ImageNet cannot be downloaded automatically: put ILSVRC2012_img_train.tar and "
                  f"ILSVRC2012_img_val.tar in {os.path.join(directory, 'downloads', 'manual')} and "
                  f"run `tfds build imagenet2012 --data_dir={directory}` (or rerun with "
                  f"--download), or copy an already prepared imagenet2012 directory into "
                  f"{directory}")
    else:
        remedy = (f"On a machine with internet access run `tfds build {tfds_name} "
                  f"--data_dir=DIR`, copy DIR here and pass --data_dir=DIR (data_dir=DIR in "
                  f"Python), or rerun with --download (download=True) where a network is "
                  f"reachable")
    return (f"{hint}Dataset {tfds_name} is not available: TFDS looked in data_dir {directory} "
            f"and {attempt} ({type(error).__name__}: {cause}). {remedy}.")


def tfds_load(tfds_name: str, split: str, request: LoadRequest, hint: str = "", **kwargs):
    """`tfds.load(..., as_supervised=True, with_info=True)`; any failure -> DatasetUnavailableError."""
    import tensorflow_datasets as tfds

    try:
        return tfds.load(tfds_name, split=split, as_supervised=True, with_info=True,
                         data_dir=request.data_dir, download=request.download, **kwargs)
    except Exception as error:  # TFDS raises AssertionError, FileNotFoundError, DatasetNotFoundError...
        raise DatasetUnavailableError(unavailable_message(tfds_name, request, error, hint)) from None


def tfds_fingerprint(tfds_name: str, data_dir: str | None) -> dict:
    """The builder's name and version, and the split sizes its prepared data records (none under
    tfds.testing.mock_data, or before the data is prepared), read from its dataset_info.json without the data."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(tfds_name, data_dir=data_dir)
    splits = {name: int(split.num_examples) for name, split in sorted(builder.info.splits.items())}
    return {"kind": "tfds", "builder": builder.name, "version": str(builder.version), "splits": splits,
            "location": str(builder.data_dir)}


def tfds_split_size(tfds_name: str, data_dir: str | None, *splits: str) -> int | None:
    """How many examples the splits hold together, as the prepared dataset_info.json records it; None where it
    records no size (not prepared, or tfds.testing.mock_data)."""
    import tensorflow_datasets as tfds

    try:
        recorded = tfds.builder(tfds_name, data_dir=data_dir).info.splits
        sizes = [int(recorded[split].num_examples) if split in recorded else 0 for split in splits]
    except Exception:  # A builder TFDS cannot make here: loading reports it.
        return None
    return sum(sizes) if all(sizes) else None


def tfds_split_arrays(tfds_name: str, split: str, request: LoadRequest, hint: str = ""
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 NHWC, labels) of one split, materialized in memory."""
    import tensorflow_datasets as tfds

    dataset, _ = tfds_load(tfds_name, split, request, hint)
    images, labels = [], []
    # Batches of fixed size rather than tfds' batch_size=-1, which aborts the process under
    # tfds.testing.mock_data (its split sizes are unknown).
    try:
        for image_batch, label_batch in tfds.as_numpy(dataset.batch(_MATERIALIZE_BATCH)):
            images.append(image_batch)
            labels.append(label_batch)
    except Exception as error:  # unreadable or truncated files surface only while reading
        raise DatasetUnavailableError(unavailable_message(tfds_name, request, error, hint)) from None
    if not images:
        raise DatasetUnavailableError(unavailable_message(
            tfds_name, request, ValueError(f"split {split!r} is empty"), hint))
    return np.concatenate(images), np.concatenate(labels)


def _register_tfds_in_memory(name: str, num_classes: int, default_normalization: str,
                             extra_split: str | None = None):
    @register_arrays_source(name)
    def source(request: LoadRequest) -> SplitArrays:
        x_train, y_train = tfds_split_arrays(name, "train", request)
        x_test, y_test = tfds_split_arrays(name, "test", request)
        stats_rows = None
        if request.svhn_extra and extra_split:
            # Seed 000, A.2: SVHN trains on its training and extra splits together.
            x_extra, y_extra = tfds_split_arrays(name, extra_split, request)
            stats_rows = len(x_train)
            x_train = np.concatenate([x_train, x_extra])
            y_train = np.concatenate([y_train, y_extra])
        return SplitArrays(x_train, y_train, x_test, y_test, num_classes=num_classes,
                           default_normalization=default_normalization, stats_rows=stats_rows)
    FINGERPRINTS.register(name, lambda data_dir: tfds_fingerprint(name, data_dir))
    TRAIN_SIZES.register(name, lambda data_dir, svhn_extra: tfds_split_size(
        name, data_dir, "train", *([extra_split] if svhn_extra and extra_split else [])))
    return source


# Seed 000, A.2: CIFAR and SVHN are normalized with per-pixel statistics.
_register_tfds_in_memory("cifar10", 10, "per_pixel")
_register_tfds_in_memory("cifar100", 100, "per_pixel")
_register_tfds_in_memory("svhn_cropped", 10, "per_pixel", extra_split="extra")
_register_tfds_in_memory("mnist", 10, "per_channel")
