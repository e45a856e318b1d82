"""tfregimes.data: every dataset loads with the right shapes, pipelines are epoch-seeded, and
normalization and augmentation do what their names say."""

from __future__ import annotations

import gzip
import random
import struct
import time
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds  # imported up front so timed loads do not include it

from tfregimes.base.registry import UnknownNameError
from tfregimes.data import AUGMENTATIONS, NORMALIZATIONS, DatasetUnavailableError, dataset_names, load_dataset, sources
from tfregimes.data import fashion_mnist as fashion_mnist_source
from tfregimes.data.normalization import MIN_STD


def batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


@pytest.fixture
def indexed_images(tmp_path):
    """An npz set of 40 distinct uint8 6x5x2 images whose label is their row index, so every
    training batch says which originals it holds."""
    rng = np.random.default_rng(0)
    x_train = rng.integers(1, 256, size=(40, 6, 5, 2), dtype=np.uint8)  # no zeros: padding shows
    name = write_npz(tmp_path / "indexed.npz", x_train=x_train, y_train=np.arange(40),
                     x_test=x_train[:3], y_test=np.arange(3))
    return name, x_train.astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------------
# Registries and datasets


def test_unknown_names_fail_listing_the_valid_ones():
    with pytest.raises(UnknownNameError, match="cifar10.*digits.*npz:PATH"):
        load_dataset("cifar11")
    with pytest.raises(UnknownNameError, match="auto, none, per_channel, per_pixel"):
        load_dataset("synthetic", normalization="per_image")
    with pytest.raises(UnknownNameError, match="crop1_flip, crop4_flip, flip, imagenet, none"):
        load_dataset("synthetic").train(32, seed=0, augment="cutout", num_epochs=1)
    assert {"digits", "fashion_mnist", "mnist1d", "synthetic", "cifar10", "cifar100",
            "svhn_cropped", "mnist", "imagenet2012"} <= set(dataset_names())
    assert NORMALIZATIONS.names() == ["none", "per_channel", "per_pixel"]
    assert AUGMENTATIONS.names() == ["crop1_flip", "crop4_flip", "flip", "imagenet", "none"]


def test_digits_is_a_fixed_stratified_80_20_split():
    ds = load_dataset("digits", normalization="none")
    assert (ds.info.input_shape, ds.info.num_classes) == ((8, 8, 1), 10)
    assert (ds.info.num_train, ds.info.num_test) == (1437, 360)
    x_train, y_train = ds.arrays("train")
    x_test, y_test = ds.arrays("test")
    assert x_train.min() == 0.0 and x_train.max() == 1.0  # 0..16 divided by 16
    # Stratified: each class's test share is within one example of 20 %.
    counts_all = np.bincount(np.concatenate([y_train, y_test]))
    assert np.all(np.abs(np.bincount(y_test) - 0.2 * counts_all) <= 1)
    assert load_dataset("digits").info.normalization == "per_channel"


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_files_are_parsed_from_data_dir(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.integers(0, 256, (7, 28, 28)), "y_train": rng.integers(0, 10, 7),
              "x_test": rng.integers(0, 256, (3, 28, 28)), "y_test": rng.integers(0, 10, 3)}
    for key, stem in fashion_mnist_source.IDX_FILES.items():
        _write_idx(tmp_path / f"{stem}.gz", arrays[key])
    ds = load_dataset("fashion_mnist", data_dir=str(tmp_path), normalization="none")
    x_train, y_train = ds.arrays("train")
    np.testing.assert_array_equal(x_train[..., 0], arrays["x_train"].astype(np.float32) / 255)
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    np.testing.assert_array_equal(ds.arrays("test")[1], arrays["y_test"])


def test_fashion_mnist_loads_offline_from_the_debian_package():
    # `.ci/run` installs dataset-fashion-mnist; without it this falls back to TFDS and fails.
    ds = load_dataset("fashion_mnist", normalization="none")
    info = ds.info
    assert (info.input_shape, info.num_classes, info.num_train, info.num_test) == (
        (28, 28, 1), 10, 60000, 10000)
    x_train, y_train = ds.arrays("train")
    assert y_train[0] == 9 and np.all(np.bincount(y_train) == 6000)  # first image: ankle boot
    assert x_train.mean() == pytest.approx(0.2860, abs=1e-4)  # the published training mean
    assert load_dataset("fashion_mnist").info.normalization == "per_channel"


def test_fashion_mnist_falls_back_to_tfds_without_idx_files(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist_source, "DEBIAN_DIR", str(tmp_path / "no-debian-package"))
    with tfds.testing.mock_data(num_examples=6):
        ds = load_dataset("fashion_mnist", data_dir=str(tmp_path))
    assert (ds.info.input_shape, ds.info.num_train, ds.info.num_test) == ((28, 28, 1), 6, 6)
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist.*"
                                                      "tfds build fashion_mnist"):
        load_dataset("fashion_mnist", data_dir=str(tmp_path))


def test_mnist1d_is_generated_offline_without_touching_global_seeds():
    sources._mnist1d_arrays.cache_clear()
    np.random.seed(123)
    random.seed(123)
    ds = load_dataset("mnist1d")
    assert np.random.randint(1 << 30) == np.random.RandomState(123).randint(1 << 30)
    assert random.random() == random.Random(123).random()
    info = ds.info
    assert (info.input_shape, info.num_classes, info.num_train, info.num_test) == (
        (40,), 10, 4000, 1000)
    assert info.normalization == "none"
    x_train, y_train = ds.arrays("train")
    assert abs(x_train.mean()) < 0.05 and abs(x_train.std() - 1) < 0.05  # generator standardizes
    assert np.all(np.bincount(y_train) > 350)
    with pytest.raises(ValueError, match="flat"):
        ds.train(32, seed=0, augment="flip", num_epochs=1)


def test_npz_flat_nhw_and_nhwc(tmp_path):
    rng = np.random.default_rng(2)
    flat = rng.normal(size=(30, 5)).astype(np.float64)
    name = write_npz(tmp_path / "flat.npz", x_train=flat, y_train=np.arange(30) % 3,
                     x_test=flat[:4], y_test=np.zeros(4, np.int64))
    ds = load_dataset(name)
    assert (ds.info.name, ds.info.input_shape, ds.info.num_classes) == (name, (5,), 3)
    assert ds.info.normalization == "none"
    np.testing.assert_array_equal(ds.arrays("train")[0], flat.astype(np.float32))  # as given

    images = rng.integers(0, 256, size=(12, 4, 4, 3), dtype=np.uint8)
    name = write_npz(tmp_path / "nhwc.npz", x_train=images, y_train=np.arange(12) % 4,
                     x_test=images[:2], y_test=np.arange(2).reshape(2, 1))
    ds = load_dataset(name)
    assert (ds.info.input_shape, ds.info.num_classes, ds.info.num_test) == ((4, 4, 3), 4, 2)
    np.testing.assert_array_equal(ds.arrays("train")[0], images / np.float32(255))

    name = write_npz(tmp_path / "nhw.npz", x_train=images[..., 0], y_train=np.arange(12) % 4,
                     x_test=images[:2, ..., 0], y_test=np.arange(2))
    assert load_dataset(name).info.input_shape == (4, 4, 1)


def test_npz_missing_file_or_arrays(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="no such file"):
        load_dataset(f"npz:{tmp_path}/absent.npz")
    name = write_npz(tmp_path / "partial.npz", x_train=np.zeros((2, 3)), y_train=np.zeros(2, int))
    with pytest.raises(DatasetUnavailableError, match="lacks the array.*x_test, y_test"):
        load_dataset(name)


# ---------------------------------------------------------------------------------------------
# TFDS datasets through tfds.testing.mock_data (offline)


@pytest.mark.parametrize("name, shape, classes, normalization", [
    ("cifar10", (32, 32, 3), 10, "per_pixel"),
    ("cifar100", (32, 32, 3), 100, "per_pixel"),
    ("svhn_cropped", (32, 32, 3), 10, "per_pixel"),
    ("mnist", (28, 28, 1), 10, "per_channel"),
])
def test_tfds_datasets_under_mock_data(name, shape, classes, normalization):
    with tfds.testing.mock_data(num_examples=20):
        ds = load_dataset(name)
    info = ds.info
    assert (info.input_shape, info.num_classes, info.num_train, info.num_test) == (
        shape, classes, 20, 20)
    assert info.normalization == normalization
    x_train, y_train = ds.arrays("train")
    reduce_axes = (0,) if normalization == "per_pixel" else (0, 1, 2)
    np.testing.assert_allclose(x_train.mean(axis=reduce_axes), 0, atol=1e-4)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert y_train.min() >= 0 and y_train.max() < classes


def test_svhn_extra_joins_training_but_not_the_statistics():
    values = {"train": 10, "extra": 200, "test": 7}  # uint8 pixel value of every image per split

    def as_dataset(self, split, **kwargs):
        count = 4 if str(split) == "train" else 6
        return tf.data.Dataset.from_tensor_slices({
            "image": np.full((count, 32, 32, 3), values[str(split)], np.uint8),
            "label": np.arange(count, dtype=np.int64)})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        ds = load_dataset("svhn_cropped", svhn_extra=True, normalization="none")
        assert (ds.info.num_train, ds.info.num_test) == (4 + 6, 6)
        ds = load_dataset("svhn_cropped", svhn_extra=True, normalization="per_channel")
    # Statistics of the standard training split only: value 10 with std 0, floored.
    np.testing.assert_allclose(ds.stats.mean, [10 / 255] * 3, rtol=1e-6)
    np.testing.assert_allclose(ds.stats.std, [MIN_STD] * 3)
    with pytest.raises(ValueError, match="svhn_extra only applies"):
        load_dataset("cifar10", svhn_extra=True)


@pytest.mark.parametrize("name", ["cifar10", "imagenet2012"])
def test_missing_tfds_dataset_fails_fast_saying_how_to_provide_it(name, tmp_path):
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as failure:
        load_dataset(name, data_dir=str(tmp_path))
    assert time.monotonic() - start < 10
    message = str(failure.value)
    assert name in message and str(tmp_path) in message and "\n" not in message
    assert f"tfds build {name}" in message and "data_dir" in message
    if name == "imagenet2012":
        assert f"{tmp_path}/downloads/manual" in message


def test_imagenet_streams_with_its_recipe_under_mock_data():
    with tfds.testing.mock_data(num_examples=5):
        ds = load_dataset("imagenet2012")
        assert (ds.info.input_shape, ds.info.num_classes, ds.info.num_train) == ((224, 224, 3),
                                                                                1000, 5)
        train = batches(ds.train(2, seed=0, augment="imagenet", num_epochs=2))
        test = batches(ds.evaluation("test", 2))
        resumed = batches(ds.train(2, seed=0, augment="crop4_flip", start_epoch=1, num_epochs=2))
    assert [x.shape for x, _ in train] == [(2, 224, 224, 3)] * 4  # 2 full batches per epoch
    assert [len(y) for _, y in test] == [2, 2, 1]
    assert len(resumed) == 2
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for x, _ in train + test:  # ImageNet channel normalization of [0, 1] pixels
        pixels = x * std + mean
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    with pytest.raises(ValueError, match="per_pixel"):
        with tfds.testing.mock_data(num_examples=5):
            load_dataset("imagenet2012", normalization="per_pixel")
    with pytest.raises(ValueError, match="only applies to the streaming imagenet2012"):
        load_dataset("synthetic").train(32, seed=0, augment="imagenet", num_epochs=1)


# ---------------------------------------------------------------------------------------------
# Training pipeline: epochs, resume determinism, subsets


def test_train_yields_full_batches_of_distinct_examples_per_epoch(indexed_images):
    name, _ = indexed_images
    ds = load_dataset(name)
    assert ds.steps_per_epoch(16) == 2  # 40 // 16, remainder dropped
    epochs = batches(ds.train(16, seed=3, num_epochs=3))
    assert len(epochs) == 3 * 2
    assert all(x.shape == (16, 6, 5, 2) and x.dtype == np.float32 and y.dtype == np.int32
               for x, y in epochs)
    per_epoch = [np.concatenate([y for _, y in epochs[i:i + 2]]) for i in range(0, 6, 2)]
    assert all(len(set(ids)) == 32 for ids in per_epoch)  # no example twice in an epoch
    assert not np.array_equal(per_epoch[0], per_epoch[1])
    assert not np.array_equal(per_epoch[1], per_epoch[2])
    # Same seed, same order; another seed, another order.
    again = np.concatenate([y for _, y in batches(ds.train(16, seed=3, num_epochs=1))])
    np.testing.assert_array_equal(again, per_epoch[0])
    other = np.concatenate([y for _, y in batches(ds.train(16, seed=4, num_epochs=1))])
    assert not np.array_equal(other, per_epoch[0])
    with pytest.raises(ValueError, match="exceeds the 40 training examples"):
        ds.steps_per_epoch(41)


def test_resumed_training_sees_exactly_the_same_augmented_batches():
    ds = load_dataset("synthetic", normalization="per_pixel")
    full = batches(ds.train(64, seed=7, augment="crop4_flip", num_epochs=4))
    resumed = batches(ds.train(64, seed=7, augment="crop4_flip", start_epoch=2, num_epochs=4))
    steps = ds.steps_per_epoch(64)
    assert len(full) == 4 * steps and len(resumed) == 2 * steps
    for (x_full, y_full), (x_resumed, y_resumed) in zip(full[2 * steps:], resumed):
        np.testing.assert_array_equal(x_resumed, x_full)
        np.testing.assert_array_equal(y_resumed, y_full)
    assert not np.array_equal(full[0][0], full[steps][0])


def _find_window(output, original, pad):
    """(row offset, column offset, flipped) with output == that window of the padded original."""
    padded = np.pad(original, [(pad, pad), (pad, pad), (0, 0)])
    height, width = original.shape[:2]
    for flipped in (False, True):
        for top in range(2 * pad + 1):
            for left in range(2 * pad + 1):
                window = padded[top:top + height, left:left + width]
                if np.array_equal(output, window[:, ::-1] if flipped else window):
                    return top, left, flipped
    return None


@pytest.mark.parametrize("augment, pad", [("crop1_flip", 1), ("crop4_flip", 4), ("flip", 0)])
def test_crop_augmentations_are_pad_and_crop_plus_flip(indexed_images, augment, pad):
    name, originals = indexed_images
    ds = load_dataset(name)
    found = []
    for x, y in batches(ds.train(20, seed=0, augment=augment, num_epochs=3)):
        for image, index in zip(x, y):
            window = _find_window(image, originals[index], pad)
            assert window is not None, f"example {index} is no window of its padded original"
            found.append(window)
    assert {flipped for _, _, flipped in found} == {False, True}
    # Every shift from -pad to +pad occurs, vertically and horizontally.
    assert {top for top, _, _ in found} == set(range(2 * pad + 1))
    assert {left for _, left, _ in found} == set(range(2 * pad + 1))


def test_train_subset_is_fixed_by_seed_and_checked(indexed_images):
    name, _ = indexed_images
    subset = load_dataset(name, train_subset=10, seed=5)
    assert subset.info.num_train == 10
    ids = subset.arrays("train")[1]
    np.testing.assert_array_equal(load_dataset(name, train_subset=10, seed=5).arrays("train")[1], ids)
    assert not np.array_equal(load_dataset(name, train_subset=10, seed=6).arrays("train")[1], ids)
    trained_on = np.concatenate([y for _, y in batches(subset.train(5, seed=0, num_epochs=1))])
    assert sorted(trained_on) == sorted(ids)
    with pytest.raises(ValueError, match="train_subset=41 must be between 1 and the 40"):
        load_dataset(name, train_subset=41)


# ---------------------------------------------------------------------------------------------
# Normalization


@pytest.mark.parametrize("normalization, axes", [("per_pixel", (0,)), ("per_channel", (0, 1, 2))])
def test_normalization_standardizes_the_training_set_whatever_the_subset(normalization, axes):
    full = load_dataset("synthetic", normalization=normalization)
    x_train, _ = full.arrays("train")
    np.testing.assert_allclose(x_train.mean(axis=axes), 0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=axes), 1, atol=1e-4)
    subset = load_dataset("synthetic", normalization=normalization, train_subset=50, seed=1)
    np.testing.assert_array_equal(subset.stats.mean, full.stats.mean)
    np.testing.assert_array_equal(subset.arrays("test")[0], full.arrays("test")[0])
    # The pipeline computes bit for bit what arrays() computes, remainder batch included.
    evaluated = batches(full.evaluation("test", 100))
    assert [len(y) for _, y in evaluated] == [100, 100, 56]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in evaluated]),
                                  full.arrays("test")[0])


def test_constant_pixel_std_is_floored(tmp_path):
    x_train = np.zeros((8, 2, 2, 1), np.uint8)
    x_train[:, 0, 0, 0] = np.arange(8) * 30  # one varying pixel, three constant black ones
    name = write_npz(tmp_path / "flat_pixels.npz", x_train=x_train, y_train=np.zeros(8, int),
                     x_test=np.full((1, 2, 2, 1), 51, np.uint8), y_test=np.zeros(1, int))
    ds = load_dataset(name, normalization="per_pixel")
    values = np.arange(8) * 30 / 255
    np.testing.assert_allclose(ds.stats.std[0, 0, 0], values.std(), rtol=1e-5)
    x_test = ds.arrays("test")[0][0, :, :, 0]
    np.testing.assert_allclose(x_test[0, 0], (51 / 255 - values.mean()) / values.std(), rtol=1e-5)
    np.testing.assert_allclose(x_test[1, 1], (51 / 255) / MIN_STD, rtol=1e-5)  # = 51, not 5e9


# ---------------------------------------------------------------------------------------------
# Keras


def test_keras_fit_resumes_on_the_finite_epoch_range():
    import keras

    ds = load_dataset("synthetic", normalization="per_pixel")
    steps = ds.steps_per_epoch(64)
    model = keras.Sequential([keras.Input(ds.info.input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(ds.info.num_classes)])
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(ds.train(64, seed=0, start_epoch=1, num_epochs=4),
                            initial_epoch=1, epochs=4, steps_per_epoch=steps,
                            validation_data=ds.evaluation("test", 128), verbose=0)
    assert history.epoch == [1, 2, 3]
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert history.history["val_accuracy"][-1] > 0.9  # the synthetic classes are separable


def test_imagenet_train_augmentation_is_seed_000s_recipe_with_its_constants():
    """Seed 000 A.2, re-derived here with the paper's numbers written out: shorter side to a random size in
    [256, 384], random 224 crop, flip, brightness ±32/255, hue ±0.1, saturation and contrast in [0.6, 1.4]."""
    from tfregimes.data.augmentation import imagenet_train_augment
    image = tf.constant(np.random.default_rng(0).integers(0, 256, size=(300, 400, 3)), tf.uint8)

    def by_hand(seed):
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 7, alg="philox"))
        size = tf.random.stateless_uniform([], seeds[0], minval=256, maxval=385, dtype=tf.int32, alg="philox")
        scale = tf.cast(size, tf.float32) / 300.0
        resized = tf.image.resize(tf.cast(image, tf.float32) / 255.0,
                                  tf.maximum(tf.cast(tf.round(tf.constant([300.0, 400.0]) * scale), tf.int32), size))
        out = tf.image.stateless_random_crop(resized, [224, 224, 3], seeds[1])
        out = tf.image.stateless_random_flip_left_right(out, seeds[2])
        out = tf.image.stateless_random_brightness(out, 32 / 255, seeds[3])
        out = tf.image.stateless_random_hue(out, 0.1, seeds[4])
        out = tf.image.stateless_random_saturation(out, 0.6, 1.4, seeds[5])
        out = tf.image.stateless_random_contrast(out, 0.6, 1.4, seeds[6])
        return tf.clip_by_value(out, 0.0, 1.0), int(size)

    sizes = set()
    for seed in range(6):
        seed = tf.constant([seed, 11], tf.int32)
        expected, size = by_hand(seed)
        sizes.add(size)
        np.testing.assert_allclose(imagenet_train_augment(image, seed).numpy(), expected.numpy(), atol=1e-6)
    assert len(sizes) > 1 and all(256 <= s <= 384 for s in sizes)  # The draw does vary inside the range.
