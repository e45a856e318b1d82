"""How many training examples a dataset holds, read without loading it, so that settings that cannot fit the data
(a --batch_size above the training set, a --train_subset beyond it) are refused before any run or sweep point
starts, not when its data has loaded.

Each source registers its count beside its loader, from what is cheap to read: the constant size of a bundled or
generated set, the shape in an .npy header inside an .npz archive, an IDX header, the split sizes TFDS' prepared
dataset_info.json records. A function returns None where it cannot tell without loading (a file that is missing or
not what it should be, a TFDS set not prepared): loading then reports the problem, and checks the sizes itself.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
from collections.abc import Callable

import numpy as np

from tfregimes.base.registry import Registry

# name -> function (data_dir or None, svhn_extra) -> the full training split's size, or None
TRAIN_SIZES: Registry[Callable[[str | None, bool], int | None]] = Registry("dataset training-set size")
# prefix -> function (argument after the colon, data_dir or None) -> size or None
PREFIX_TRAIN_SIZES: Registry[Callable[[str, str | None], int | None]] = Registry("dataset prefix training-set size")


def npz_member_rows(path: str, key: str) -> int | None:
    """The first dimension of array `key` of an .npz archive, from its .npy header (no data read)."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                return None
            shape, _, _ = read_header(member)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return int(shape[0]) if shape else None


def idx_rows(path: str) -> int | None:
    """The first dimension an IDX file's header promises (yann.lecun.com/exdb/mnist), gzipped or not."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(8)
    except OSError:
        return None
    if len(header) < 8 or header[:2] != b"\0\0" or header[3] < 1:
        return None
    return struct.unpack(">I", header[4:8])[0]
