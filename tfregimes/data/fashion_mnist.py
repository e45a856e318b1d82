"""Fashion-MNIST from the four standard IDX files, falling back to TFDS.

Fashion-MNIST (60k train / 10k test, 28x28 grey) is the real dataset this project's CPU machines
can run the papers' experiments on, so it loads offline: from `data_dir` when that holds the IDX
files, else from Debian's `dataset-fashion-mnist` package, else from TFDS.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct

import numpy as np

from tfregimes.data.base import LoadRequest, SplitArrays
from tfregimes.data.fingerprint import FINGERPRINTS, files_fingerprint
from tfregimes.data.registry import register_arrays_source
from tfregimes.data.sizes import TRAIN_SIZES, idx_rows
from tfregimes.data.tfds_sources import tfds_fingerprint, tfds_split_arrays, tfds_split_size

# Where `apt-get install dataset-fashion-mnist` puts the files (`dpkg -L dataset-fashion-mnist`).
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_UBYTE = 0x08


def read_idx(path: str) -> np.ndarray:
    """Parses an IDX file (optionally gzipped) of unsigned bytes into an array of its shape.

    Format (yann.lecun.com/exdb/mnist): two zero bytes, a type byte (0x08 = ubyte), the number of
    dimensions, then that many big-endian uint32 sizes, then the data.
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        content = handle.read()
    zeros, type_code, num_dims = struct.unpack(">HBB", content[:4])
    if zeros != 0 or type_code != _IDX_UBYTE:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (header {content[:4]!r})")
    header_size = 4 + 4 * num_dims
    shape = struct.unpack(f">{num_dims}I", content[4:header_size])
    data = np.frombuffer(content, dtype=np.uint8, offset=header_size)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header promises shape {shape} but holds {data.size} bytes")
    return data.reshape(shape)


def _idx_path(directory: str, stem: str) -> str | None:
    for candidate in (stem + ".gz", stem):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def find_idx_directory(candidates: list[str]) -> str | None:
    """The first directory holding all four IDX files (gzipped or not)."""
    for directory in candidates:
        if all(_idx_path(directory, stem) for stem in IDX_FILES.values()):
            return directory
    return None


@functools.lru_cache(maxsize=2)
def load_idx_directory(directory: str) -> dict[str, np.ndarray]:
    """The four arrays, cached per process (parsing takes about a second); read-only."""
    arrays = {key: read_idx(_idx_path(directory, stem)) for key, stem in IDX_FILES.items()}
    arrays["x_train"] = arrays["x_train"][..., None]
    arrays["x_test"] = arrays["x_test"][..., None]
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def _candidate_directories(data_dir: str | None) -> list[str]:
    candidates = []
    if data_dir:
        data_dir = os.path.expanduser(data_dir)
        candidates += [data_dir, os.path.join(data_dir, "fashion-mnist")]
    return candidates + [DEBIAN_DIR]


@register_arrays_source("fashion_mnist")
def fashion_mnist(request: LoadRequest) -> SplitArrays:
    candidates = _candidate_directories(request.data_dir)
    directory = find_idx_directory(candidates)
    if directory is not None:
        arrays = load_idx_directory(os.path.realpath(directory))
    else:
        looked = (f"No Fashion-MNIST IDX files ({', '.join(f + '.gz' for f in IDX_FILES.values())}) "
                  f"in {', '.join(candidates)}; install them with `apt-get install "
                  f"dataset-fashion-mnist` or point --data_dir at a directory holding them. ")
        x_train, y_train = tfds_split_arrays("fashion_mnist", "train", request, hint=looked)
        x_test, y_test = tfds_split_arrays("fashion_mnist", "test", request, hint=looked)
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return SplitArrays(**arrays, num_classes=10, default_normalization="per_channel")


@FINGERPRINTS.register("fashion_mnist")
def fashion_mnist_fingerprint(data_dir: str | None) -> dict:
    """The four IDX files the loader reads, or (without them) the TFDS builder it falls back to."""
    directory = find_idx_directory(_candidate_directories(data_dir))
    if directory is None:
        return tfds_fingerprint("fashion_mnist", data_dir)
    return files_fingerprint([_idx_path(directory, stem) for stem in IDX_FILES.values()])


@TRAIN_SIZES.register("fashion_mnist")
def fashion_mnist_train_size(data_dir: str | None, svhn_extra: bool) -> int | None:
    """The labels file's header, or (without the IDX files) TFDS' recorded split size."""
    directory = find_idx_directory(_candidate_directories(data_dir))
    if directory is None:
        return tfds_split_size("fashion_mnist", data_dir, "train")
    return idx_rows(_idx_path(directory, IDX_FILES["y_train"]))
