"""The data fingerprint a run records (issue 24, item 1): what identifies each dataset's content, how two compare,
and the SHA-256 cache that keeps large files from being read again."""

import hashlib
import os
import shutil
import time
import types

import numpy as np
import pytest

from tfregimes.base import file_digest
from tfregimes.base import run_dir as run_dir_module
from tfregimes.data import DATASETS, dataset_fingerprint, fingerprint_differences
from tfregimes.data.fingerprint import FINGERPRINTS, PREFIX_FINGERPRINTS
from tfregimes.data.registry import PREFIX_SOURCES


@pytest.fixture
def counted_reads(monkeypatch, tmp_path):
    """A fresh cache (memory and disk) and a list of the files hashed by reading them."""
    monkeypatch.setenv(file_digest.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(file_digest, "_memory", {})
    reads = []
    real = run_dir_module.file_sha256

    def counting(path):
        reads.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(run_dir_module, "file_sha256", counting)
    return reads


def _write_npz(path, seed, n=20):
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.uniform(size=(n, 4)).astype(np.float32), y_train=np.arange(n) % 2,
             x_test=rng.uniform(size=(6, 4)).astype(np.float32), y_test=np.arange(6) % 2)


def _age(path, seconds=60):
    """Dates the file back, out of the racy window in which a digest is not cached."""
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_every_dataset_and_prefix_has_a_fingerprint():
    assert FINGERPRINTS.names() == DATASETS.names()
    assert PREFIX_FINGERPRINTS.names() == PREFIX_SOURCES.names()


def test_an_npz_fingerprint_is_its_size_and_sha256_wherever_the_file_lies(tmp_path, counted_reads):
    path = tmp_path / "a" / "data.npz"
    path.parent.mkdir()
    _write_npz(path, seed=0)
    fingerprint = dataset_fingerprint(f"npz:{path}")
    content = path.read_bytes()
    assert fingerprint["kind"] == "files" and fingerprint["dataset"] == f"npz:{path}"
    assert fingerprint["files"] == {"data.npz": {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}}
    assert fingerprint["location"] == str(tmp_path / "a")
    # A copy elsewhere is the same data: same digest, no difference (the location is shown, not compared).
    (tmp_path / "b").mkdir()
    copy = shutil.copy(path, tmp_path / "b" / "data.npz")
    moved = dataset_fingerprint(f"npz:{copy}")
    assert moved["digest"] == fingerprint["digest"] and fingerprint_differences(fingerprint, moved) == []
    _write_npz(path, seed=1)
    changed = dataset_fingerprint(f"npz:{path}")
    assert changed["digest"] != fingerprint["digest"]
    old, new = fingerprint["files"]["data.npz"]["sha256"], changed["files"]["data.npz"]["sha256"]
    assert fingerprint_differences(fingerprint, changed) == [
        f"files/data.npz/sha256: recorded {old[:12]}…, now {new[:12]}…"]
    _write_npz(path, seed=1, n=21)
    assert [d.split(":")[0] for d in fingerprint_differences(fingerprint, dataset_fingerprint(f"npz:{path}"))] == [
        "files/data.npz/sha256", "files/data.npz/size"]


def test_a_file_is_read_once_per_content_then_its_digest_comes_from_the_cache(tmp_path, counted_reads):
    path = tmp_path / "data.npz"
    _write_npz(path, seed=0)
    _age(path)
    first = file_digest.cached_sha256(path)
    assert first == hashlib.sha256(path.read_bytes()).hexdigest() and counted_reads == ["data.npz"]
    assert file_digest.cached_sha256(path) == first and counted_reads == ["data.npz"]
    file_digest._memory.clear()  # A new process: the digest comes from the cache file.
    assert file_digest.cached_sha256(path) == first and counted_reads == ["data.npz"]
    _write_npz(path, seed=1)  # Same size, new content and mtime: read again.
    _age(path, seconds=30)
    second = file_digest.cached_sha256(path)
    assert second != first and second == hashlib.sha256(path.read_bytes()).hexdigest()
    assert counted_reads == ["data.npz"] * 2


def test_a_file_written_just_now_is_not_cached(tmp_path, counted_reads):
    """Within the racy window a same-size rewrite may keep the mtime: such a digest is never remembered."""
    path = tmp_path / "data.npz"
    _write_npz(path, seed=0)
    file_digest.cached_sha256(path)
    file_digest.cached_sha256(path)
    assert counted_reads == ["data.npz"] * 2
    assert not (tmp_path / "cache" / file_digest.CACHE_FILE).exists()


def test_generated_sets_are_named_by_generator_and_parameters():
    synthetic = dataset_fingerprint("synthetic")
    assert synthetic["kind"] == "generated" and synthetic["generator"] == "tfregimes.data.sources.make_synthetic"
    assert synthetic["parameters"] == {"image_shape": [8, 8, 3], "num_train": 512, "num_test": 256,
                                       "num_classes": 10, "noise": 0.2, "seed": 1234}
    assert dataset_fingerprint("synthetic32")["digest"] != synthetic["digest"]
    assert dataset_fingerprint("synthetic") == synthetic  # Deterministic.


def test_digits_is_the_file_scikit_learn_reads_and_the_split_made_of_it():
    import sklearn.datasets
    path = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data", "digits.csv.gz")
    with open(path, "rb") as f:
        expected = hashlib.sha256(f.read()).hexdigest()
    fingerprint = dataset_fingerprint("digits")
    assert fingerprint["files"]["digits.csv.gz"]["sha256"] == expected
    assert fingerprint["split"] == {"test_fraction": 0.2, "seed": 0, "stratified": True}


def test_a_tfds_fingerprint_is_the_builders_name_version_and_split_sizes(monkeypatch):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=5):
        cifar10 = dataset_fingerprint("cifar10")
        cifar100 = dataset_fingerprint("cifar100")
    assert (cifar10["kind"], cifar10["builder"]) == ("tfds", "cifar10")
    assert cifar10["version"] == str(tfds.builder("cifar10").version) and cifar100["digest"] != cifar10["digest"]

    def prepared(name, data_dir=None):  # What a prepared copy's dataset_info.json gives.
        splits = {"train": 50_000, "test": 10_000}
        return types.SimpleNamespace(name=name, version="3.0.2", data_dir=f"{data_dir}/{name}/3.0.2", info=(
            types.SimpleNamespace(splits={k: types.SimpleNamespace(num_examples=n) for k, n in splits.items()})))

    monkeypatch.setattr(tfds, "builder", prepared)
    full = dataset_fingerprint("cifar10", data_dir="/data")
    assert full["splits"] == {"test": 10_000, "train": 50_000} and full["location"] == "/data/cifar10/3.0.2"
    assert fingerprint_differences(full, {**full, "splits": {"test": 10_000, "train": 49_000}}) == [
        "splits/train: recorded 50000, now 49000"]
