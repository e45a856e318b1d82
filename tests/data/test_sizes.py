"""Training-set sizes read without loading (tfregimes.data.sizes): each equals what loading the dataset gives, or is
None where only loading can tell."""

from __future__ import annotations

import gzip
import struct
import types

import numpy as np
import pytest

from tfregimes.data import DATASETS, load_dataset, training_set_size
from tfregimes.data import fashion_mnist as fashion_mnist_source
from tfregimes.data import sizes as sizes_lib
from tfregimes.data.registry import PREFIX_SOURCES


def test_every_dataset_and_prefix_has_a_size():
    assert sizes_lib.TRAIN_SIZES.names() == DATASETS.names()
    assert sizes_lib.PREFIX_TRAIN_SIZES.names() == PREFIX_SOURCES.names()


@pytest.mark.parametrize("name", ["digits", "synthetic", "synthetic32", "mnist1d"])
def test_bundled_and_generated_sizes_are_what_loading_gives(name):
    assert training_set_size(name) == load_dataset(name).info.num_train


def test_an_npz_size_is_read_from_the_header_of_x_train(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((37, 4, 4), np.uint8), y_train=np.zeros(37, np.int64),
             x_test=np.zeros((5, 4, 4), np.uint8), y_test=np.zeros(5, np.int64))
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("the arrays were loaded"))
    assert training_set_size(f"npz:{path}") == 37
    np.savez(path, y_train=np.zeros(3))  # No x_train: loading says so.
    assert training_set_size(f"npz:{path}") is None
    path.write_text("not a zip")
    assert training_set_size(f"npz:{path}") is None and training_set_size(f"npz:{tmp_path}/missing.npz") is None


def test_fashion_mnist_size_is_the_idx_header_and_tfds_split_size_without_files(tmp_path, monkeypatch):
    labels = np.arange(11, dtype=np.uint8) % 10
    for key, stem in fashion_mnist_source.IDX_FILES.items():  # Only the labels' header is read.
        content = (struct.pack(">HBBI", 0, 8, 1, 11) + labels.tobytes()) if key == "y_train" else b"garbage"
        with gzip.open(tmp_path / f"{stem}.gz", "wb") as handle:
            handle.write(content)
    assert training_set_size("fashion_mnist", data_dir=str(tmp_path)) == 11
    assert training_set_size("fashion_mnist") == 60_000  # Debian's files (.ci/run installs them).

    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=5):  # No recorded sizes: only loading can tell.
        assert training_set_size("cifar10") is None
    monkeypatch.setattr(fashion_mnist_source, "DEBIAN_DIR", str(tmp_path / "none"))

    def prepared(name, data_dir=None):  # What a prepared copy's dataset_info.json gives.
        splits = {"train": 60_000, "test": 10_000, "extra": 531_131}
        return types.SimpleNamespace(info=types.SimpleNamespace(
            splits={k: types.SimpleNamespace(num_examples=n) for k, n in splits.items()}))

    monkeypatch.setattr(tfds, "builder", prepared)
    assert training_set_size("fashion_mnist", data_dir=str(tmp_path / "empty")) == 60_000
    assert training_set_size("svhn_cropped", svhn_extra=True) == 591_131 and training_set_size("cifar10") == 60_000
