"""Datasets that need no download: digits, mnist1d, synthetic sets, and npz:PATH files."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import math
import os
import random
import zipfile

import numpy as np

from tfregimes.data import validation
from tfregimes.data.base import LoadedDataset, LoadRequest, SplitArrays
from tfregimes.data.errors import DatasetUnavailableError, InvalidDatasetError
from tfregimes.data.fingerprint import (
    FINGERPRINTS,
    PREFIX_FINGERPRINTS,
    files_fingerprint,
    generated_fingerprint,
)
from tfregimes.data.pipeline import InMemoryDataset
from tfregimes.data.registry import PREFIX_SOURCES, register_arrays_source
from tfregimes.data.sizes import PREFIX_TRAIN_SIZES, TRAIN_SIZES, npz_member_rows

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DIGITS_SIZE = 1797  # The images of scikit-learn's digits.csv.gz.


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


@FINGERPRINTS.register("digits")
def digits_fingerprint(data_dir: str | None) -> dict:
    """The file `load_digits` reads, and the split made of it."""
    path = importlib.resources.files("sklearn.datasets.data") / "digits.csv.gz"
    return files_fingerprint([str(path)], split={"test_fraction": DIGITS_TEST_FRACTION, "seed": DIGITS_SPLIT_SEED,
                                                 "stratified": True})


@TRAIN_SIZES.register("digits")
def digits_train_size(data_dir: str | None, svhn_extra: bool) -> int:
    # train_test_split rounds the test share up.
    return DIGITS_SIZE - math.ceil(DIGITS_TEST_FRACTION * DIGITS_SIZE)


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


@FINGERPRINTS.register("mnist1d")
def mnist1d_fingerprint(data_dir: str | None) -> dict:
    from mnist1d.data import get_dataset_args

    parameters = {k: v for k, v in vars(get_dataset_args()).items() if k != "url"}  # The url is not read.
    return generated_fingerprint("mnist1d.data.make_dataset", parameters, importlib.metadata.version("mnist1d"))


@TRAIN_SIZES.register("mnist1d")
def mnist1d_train_size(data_dir: str | None, svhn_extra: bool) -> int:
    from mnist1d.data import get_dataset_args

    args = get_dataset_args()
    return int(args.num_samples // 10 * 10 * args.train_split)  # make_dataset: whole classes, then its split.


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


# name -> make_synthetic's arguments
SYNTHETIC_SETS = {
    "synthetic": dict(image_shape=(8, 8, 3), num_train=512, num_test=256),  # Tiny 8x8x3 images: for tests.
    "synthetic32": dict(image_shape=(32, 32, 3), num_train=2048, num_test=512),  # CIFAR-sized: for benchmarks.
}


def _register_synthetic(name: str, parameters: dict) -> None:
    register_arrays_source(name)(lambda request: make_synthetic(**parameters))
    TRAIN_SIZES.register(name, lambda data_dir, svhn_extra: parameters["num_train"])
    FINGERPRINTS.register(name, lambda data_dir: generated_fingerprint(
        "tfregimes.data.sources.make_synthetic", {**_SYNTHETIC_DEFAULTS, **parameters}))


_SYNTHETIC_DEFAULTS = {"num_classes": 10, "noise": 0.2, "seed": 1234}  # make_synthetic's
for _name, _parameters in SYNTHETIC_SETS.items():
    _register_synthetic(_name, _parameters)


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
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        # np.load reads a text file as "pickled data" and a damaged zip as BadZipFile: say what the file is not.
        raise InvalidDatasetError(f"{name}: the file is not a .npz archive that numpy can read ({error}); save "
                                  f"one with {_SAVEZ}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # np.save's .npy: one array, not the four splits.
        raise InvalidDatasetError(f"{name}: the file holds a single array (numpy.save's .npy format, shape "
                                  f"{loaded.shape}), not a .npz archive of the four splits; save one with {_SAVEZ}")
    try:
        with loaded as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DatasetUnavailableError(
                    f"Dataset {name} is not usable: it lacks the array(s) {', '.join(missing)} "
                    f"(it has {', '.join(archive.files) or 'none'}; needs {', '.join(NPZ_KEYS)}).")
            return {key: archive[key] for key in archive.files if key in (*NPZ_KEYS, "num_classes")}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:  # A damaged member surfaces on reading.
        raise InvalidDatasetError(f"{name}: the file is not a .npz archive that numpy can read ({error}); save "
                                  f"one with {_SAVEZ}") from None


_SAVEZ = "numpy.savez(PATH, x_train=..., y_train=..., x_test=..., y_test=...)"


def _stored_num_classes(name: str, value: np.ndarray, num_train: int) -> int:
    """The file's num_classes: a whole number from 1 to the training examples (more classes than examples leaves
    classes no example can teach, and a huge count only exhausts memory building the output layer)."""
    fix = ("store the class count the labels use (numpy.savez(..., num_classes=10)), or leave num_classes out to "
           "infer it from the labels")
    value = np.asarray(value)
    numeric = np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)
    number = value.reshape(()).item() if value.size == 1 and numeric else None
    if number is None or not np.isfinite(number) or number != int(number):
        shown = number if number is not None else f"{value.dtype} of shape {value.shape}"
        raise InvalidDatasetError(f"{name}: num_classes must be one whole number, not {shown}; {fix}")
    if not 1 <= int(number) <= num_train:
        raise InvalidDatasetError(f"{name}: num_classes={int(number)} is outside 1..{num_train} (the number of "
                                  f"training examples); {fix}")
    return int(number)


def npz_path(path: str) -> str:
    """The file of npz:PATH, which must exist."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise DatasetUnavailableError(f"Dataset npz:{path} is not available: no such file. Save one with {_SAVEZ}.")
    return path


def npz_arrays(path: str) -> SplitArrays:
    """Arrays x_train, y_train, x_test, y_test of a .npz file (and optionally num_classes, a scalar: else the
    class count is inferred from the labels); normalization none by default."""
    path = npz_path(path)
    name = f"npz:{path}"
    arrays = _read_npz(path, name)
    x_train = _npz_inputs(arrays["x_train"], name, "x_train")
    x_test = _npz_inputs(arrays["x_test"], name, "x_test")
    for split, x in (("train", x_train), ("test", x_test)):
        validation.check_lengths(name, split, x, arrays[f"y_{split}"])
        validation.check_nonempty(name, f"x_{split}", x)
    labels = [validation.check_labels(name, key, arrays[key], None) for key in ("y_train", "y_test")]
    if "num_classes" in arrays:
        num_classes = _stored_num_classes(name, arrays["num_classes"], len(x_train))
    else:
        num_classes = validation.inferred_num_classes(name, *labels)
    return SplitArrays(x_train, labels[0], x_test, labels[1], num_classes=num_classes,
                       default_normalization="none")


@PREFIX_SOURCES.register("npz")
def npz(path: str, request: LoadRequest) -> LoadedDataset:
    return InMemoryDataset.from_arrays(f"npz:{path}", npz_arrays(path), request)


@PREFIX_FINGERPRINTS.register("npz")
def npz_fingerprint(path: str, data_dir: str | None) -> dict:
    return files_fingerprint([npz_path(path)])


@PREFIX_TRAIN_SIZES.register("npz")
def npz_train_size(path: str, data_dir: str | None) -> int | None:
    return npz_member_rows(os.path.expanduser(path), "x_train")
