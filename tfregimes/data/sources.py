"""Datasets that need no download: digits, mnist1d, synthetic sets, and npz:PATH files."""

from __future__ import annotations

import functools
import os
import random
import zipfile

import numpy as np

from tfregimes.data import validation
from tfregimes.data.base import LoadedDataset, LoadRequest, SplitArrays
from tfregimes.data.errors import DatasetUnavailableError, InvalidDatasetError
from tfregimes.data.pipeline import InMemoryDataset
from tfregimes.data.registry import PREFIX_SOURCES, register_arrays_source

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _digits_split() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]  # pixel values 0..16
    # scikit-learn ships no test split: a fixed stratified 80/20 split (1,437 / 360 images).
    return tuple(train_test_split(images, digits.target.astype(np.int32),
                                  test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED,
                                  stratify=digits.target))


@register_arrays_source("digits")
def digits(request: LoadRequest) -> SplitArrays:
    """scikit-learn's bundled 1,797 8x8 handwritten digits, scaled to [0, 1]."""
    x_train, x_test, y_train, y_test = _digits_split()
    return SplitArrays(x_train, y_train, x_test, y_test, num_classes=10,
                       default_normalization="per_channel")


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, ...]:
    # The package's make_dataset generates the standard MNIST-1D (default arguments: 4,000 train /
    # 1,000 test, length 40) offline in about 2 s; its get_dataset would download instead.
    from mnist1d.data import make_dataset

    # make_dataset reseeds the global `random` and NumPy generators; leave them as they were.
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset()
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return (data["x"].astype(np.float32), data["y"].astype(np.int32),
            data["x_test"].astype(np.float32), data["y_test"].astype(np.int32))


@register_arrays_source("mnist1d")
def mnist1d(request: LoadRequest) -> SplitArrays:
    """MNIST-1D (Greydanus 2020): 1-D signals of length 40, already standardized by the generator."""
    x_train, y_train, x_test, y_test = _mnist1d_arrays()
    return SplitArrays(x_train, y_train, x_test, y_test, num_classes=10,
                       default_normalization="none")


def make_synthetic(image_shape: tuple[int, ...], num_train: int, num_test: int,
                   num_classes: int = 10, noise: float = 0.2, seed: int = 1234) -> SplitArrays:
    """A learnable, deterministic image set: each class is a fixed random pattern plus noise.

    Values lie in [0, 1]; the generator seed is fixed, so the set never changes between runs.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0.2, 0.8, size=(num_classes, *image_shape))
    labels = np.arange(num_train + num_test) % num_classes
    rng.shuffle(labels)
    images = prototypes[labels] + rng.normal(0.0, noise, size=(len(labels), *image_shape))
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    return SplitArrays(images[:num_train], labels[:num_train], images[num_train:],
                       labels[num_train:], num_classes=num_classes, default_normalization="none")


@register_arrays_source("synthetic")
def synthetic(request: LoadRequest) -> SplitArrays:
    """Tiny 8x8x3 images, 10 classes, 512 train / 256 test: for tests."""
    return make_synthetic((8, 8, 3), num_train=512, num_test=256)


@register_arrays_source("synthetic32")
def synthetic32(request: LoadRequest) -> SplitArrays:
    """CIFAR-sized 32x32x3 images, 10 classes, 2,048 train / 512 test: for benchmarks."""
    return make_synthetic((32, 32, 3), num_train=2048, num_test=512)


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _npz_inputs(x: np.ndarray, name: str, key: str) -> np.ndarray:
    if x.ndim == 3:  # (N, H, W): grey images without a channel axis
        x = x[..., None]
    if x.ndim not in (2, 4):
        raise InvalidDatasetError(f"{name}: {key} must be NHWC images, NHW grey images or flat (N, D) "
                                  f"features; got shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    raise InvalidDatasetError(f"{name}: {key} has dtype {x.dtype}; store uint8 pixels (divided by 255 on "
                              "loading) or floats (used as given)")


def _read_npz(path: str, name: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DatasetUnavailableError(
                    f"Dataset {name} is not usable: it lacks the array(s) {', '.join(missing)} "
                    f"(it has {', '.join(archive.files) or 'none'}; needs {', '.join(NPZ_KEYS)}).")
            return {key: archive[key] for key in archive.files if key in (*NPZ_KEYS, "num_classes")}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        # np.load reads a text file as "pickled data" and a damaged zip as BadZipFile: say what the file is not.
        raise InvalidDatasetError(f"{name}: the file is not a .npz archive that numpy can read ({error}); save "
                                  "one with numpy.savez(PATH, x_train=..., y_train=..., x_test=..., "
                                  "y_test=...)") from None


def npz_arrays(path: str) -> SplitArrays:
    """Arrays x_train, y_train, x_test, y_test of a .npz file (and optionally num_classes, a scalar: else the
    class count is inferred from the labels); normalization none by default."""
    path = os.path.expanduser(path)
    name = f"npz:{path}"
    if not os.path.isfile(path):
        raise DatasetUnavailableError(
            f"Dataset {name} is not available: no such file. Save one with "
            f"numpy.savez(PATH, x_train=..., y_train=..., x_test=..., y_test=...).")
    arrays = _read_npz(path, name)
    x_train = _npz_inputs(arrays["x_train"], name, "x_train")
    x_test = _npz_inputs(arrays["x_test"], name, "x_test")
    for split, x in (("train", x_train), ("test", x_test)):
        validation.check_lengths(name, split, x, arrays[f"y_{split}"])
        validation.check_nonempty(name, f"x_{split}", x)
    labels = [validation.check_labels(name, key, arrays[key], None) for key in ("y_train", "y_test")]
    if "num_classes" in arrays:
        num_classes = int(arrays["num_classes"])
    else:
        num_classes = validation.inferred_num_classes(name, *labels)
    return SplitArrays(x_train, labels[0], x_test, labels[1], num_classes=num_classes,
                       default_normalization="none")


@PREFIX_SOURCES.register("npz")
def npz(path: str, request: LoadRequest) -> LoadedDataset:
    return InMemoryDataset.from_arrays(f"npz:{path}", npz_arrays(path), request)
