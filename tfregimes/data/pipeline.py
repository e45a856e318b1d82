"""tf.data pipelines over in-memory arrays, seeded per epoch so that resumed runs see the same data.

Epoch e's order is a stateless shuffle seeded by (seed, e), and batch k of epoch e is augmented
with a stateless seed derived from (seed, e, k). Nothing depends on how many epochs were iterated
before, so `train(start_epoch=k, ...)` yields exactly the batches an uninterrupted run sees from
epoch k on. The pipeline is plain tf.data (no py_function), so it runs under tf.distribute.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfregimes.data.augmentation import get_batch_augmentation
from tfregimes.data.base import DatasetInfo, LoadedDataset, LoadRequest, SplitArrays, check_epochs, check_split
from tfregimes.data.confusion import confusion_set
from tfregimes.data.normalization import (
    NormalizationStats,
    compute_stats,
    normalize_numpy,
    normalize_tf,
    resolve_normalization,
    unit_scale_numpy,
    unit_scale_tf,
)
from tfregimes.data.validation import check_labels, check_split_arrays

_ALG = "philox"
# Independent random streams derived from one run seed.
SHUFFLE_STREAM = 0
AUGMENT_STREAM = 1
VALIDATION_STREAM = 3  # target_stop's check subset uses stream 2.
EXTRA_SPLITS = ("confusion", "validation")  # Splits that exist only when asked for.


def epoch_seed(seed: int, epoch, stream: int) -> tf.Tensor:
    """A stateless seed ([2] int tensor) that depends only on (seed, epoch, stream)."""
    base = tf.constant([seed, stream], tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64), alg=_ALG)


def item_seed(seed: int, epoch, index, stream: int = AUGMENT_STREAM) -> tf.Tensor:
    """A stateless seed for batch or example `index` of `epoch`."""
    return tf.random.experimental.stateless_fold_in(epoch_seed(seed, epoch, stream),
                                                    tf.cast(index, tf.int64), alg=_ALG)


def subset_indices(num_available: int, subset: int, seed: int) -> np.ndarray:
    """A fixed random subset of `subset` training rows, chosen by `seed` (sorted)."""
    if not 1 <= subset <= num_available:
        raise ValueError(f"train_subset={subset} must be between 1 and the {num_available} "
                         f"training examples available")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_available, size=subset, replace=False))


def validation_rows(num_train: int, share: float, seed: int) -> np.ndarray:
    """The rows of the training examples held out for validation (sorted): round(share × num_train) of them, a fixed
    draw by `seed` from its own random stream, so the held-out rows do not follow from --train_subset's draw."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"validation_split={share} must be a share of the training examples in (0, 1)")
    count = round(share * num_train)
    if not 1 <= count < num_train:
        raise ValueError(f"validation_split={share} holds out {count} of the {num_train} training examples; it must "
                         "leave at least one on each side")
    rng = np.random.default_rng([seed, VALIDATION_STREAM])
    return np.sort(rng.choice(num_train, size=count, replace=False))


class InMemoryDataset(LoadedDataset):
    """Raw arrays in memory (uint8 stays uint8); scaling, augmentation and normalization happen
    per batch inside the tf.data pipeline."""

    def __init__(self, info: DatasetInfo, splits: dict[str, tuple[np.ndarray, np.ndarray]],
                 stats: NormalizationStats | None):
        super().__init__(info)
        self._splits = splits
        self.stats = stats
        self._tensor_cache: dict[str, tuple[tf.Tensor, tf.Tensor]] = {}

    @classmethod
    def from_arrays(cls, name: str, arrays: SplitArrays, request: LoadRequest) -> InMemoryDataset:
        normalization = resolve_normalization(request.normalization,
                                              arrays.default_normalization)
        # Statistics before subsetting: every subset size and the evaluate CLI see the same inputs.
        check_split_arrays(name, arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test, arrays.num_classes)
        stats = compute_stats(normalization, arrays.x_train, arrays.stats_rows)
        x_train = arrays.x_train
        y_train = check_labels(name, "y_train", arrays.y_train, arrays.num_classes).astype(np.int32)
        splits = {}
        if request.confusion_size:
            if request.train_subset is None:
                raise ValueError("a confusion set needs a training subset (--train_subset) whose metrics it leaves "
                                 "out; its images come from the rest of the training split")
            keep = subset_indices(len(x_train), request.train_subset, request.seed)
            rows, labels = confusion_set(len(x_train), keep, request.confusion_size, arrays.num_classes, request.seed)
            splits["confusion"] = (x_train[rows], labels)
            x_train, y_train = x_train[keep], y_train[keep]
        elif request.train_subset is not None:
            keep = subset_indices(len(x_train), request.train_subset, request.seed)
            x_train, y_train = x_train[keep], y_train[keep]
        if request.validation_split:  # Held out of the training examples (after any subset): never trained on.
            held = validation_rows(len(x_train), request.validation_split, request.seed)
            kept = np.setdiff1d(np.arange(len(x_train)), held)
            splits["validation"] = (x_train[held], y_train[held])
            x_train, y_train = x_train[kept], y_train[kept]
        splits["train"] = (x_train, y_train)
        y_test = check_labels(name, "y_test", arrays.y_test, arrays.num_classes)
        splits["test"] = (arrays.x_test, y_test.astype(np.int32))
        info = DatasetInfo(name=name, input_shape=tuple(int(d) for d in x_train.shape[1:]),
                           num_classes=arrays.num_classes, num_train=len(x_train),
                           num_test=len(arrays.x_test), normalization=normalization,
                           in_memory=True, num_confusion=request.confusion_size,
                           num_validation=len(splits.get("validation", ((),))[0]))
        return cls(info, splits, stats)

    def _fit_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """What training iterates over: the training subset, then the confusion set if there is one."""
        if "confusion" not in self._splits:
            return self._splits["train"]
        (x, y), (x_confusion, y_confusion) = self._splits["train"], self._splits["confusion"]
        return np.concatenate([x, x_confusion]), np.concatenate([y, y_confusion])

    def _tensors(self, split: str) -> tuple[tf.Tensor, tf.Tensor]:
        """The split ("fit": the training arrays) as host tensors, created once and captured by the pipelines'
        functions."""
        if split not in self._tensor_cache:
            x, y = self._fit_arrays() if split == "fit" else self._splits[split]
            with tf.device("/cpu:0"):
                self._tensor_cache[split] = (tf.constant(x), tf.constant(y))
        return self._tensor_cache[split]

    def train(self, batch_size: int, *, seed: int, augment: str = "none", start_epoch: int = 0,
              num_epochs: int, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        if input_context is not None:
            raise ValueError(f"{self.info.name} is held in memory and is sharded by data across workers, "
                             "not read per input pipeline")
        augmentation = get_batch_augmentation(augment, dataset_name=self.info.name,
                                              is_image=self.info.is_image)
        check_epochs(start_epoch, num_epochs)
        steps = self.steps_per_epoch(batch_size)
        x_all, y_all = self._tensors("fit")
        num_train, stats = self.info.num_fit, self.stats

        def epoch_batches(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(num_train), seed=epoch_seed(seed, epoch, SHUFFLE_STREAM), alg=_ALG)
            batches = tf.reshape(order[:steps * batch_size], [steps, batch_size])
            indexed = tf.data.Dataset.from_tensor_slices(batches).enumerate()
            return indexed.map(lambda step, indices: (epoch, step, indices))

        def make_batch(epoch, step, indices):
            images = unit_scale_tf(tf.gather(x_all, indices))
            if not augmentation.is_identity:
                images = augmentation.batch_fn(images, item_seed(seed, epoch, step))
            return normalize_tf(images, stats), tf.gather(y_all, indices)

        dataset = (tf.data.Dataset.range(start_epoch, num_epochs)
                   .flat_map(epoch_batches)
                   .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                   .apply(tf.data.experimental.assert_cardinality(
                       (num_epochs - start_epoch) * steps)))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def evaluation(self, split: str, batch_size: int, *, rows: np.ndarray | None = None) -> tf.data.Dataset:
        if split not in EXTRA_SPLITS or split not in self._splits:
            check_split(split)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        x_all, y_all = self._tensors(split)
        stats = self.stats

        def make_batch(indices):
            images = unit_scale_tf(tf.gather(x_all, indices))
            return normalize_tf(images, stats), tf.gather(y_all, indices)

        indices = (tf.data.Dataset.range(len(self._splits[split][0])) if rows is None
                   else tf.data.Dataset.from_tensor_slices(np.asarray(rows, np.int64)))
        dataset = (indices.batch(batch_size)
                   .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._splits[split if split in EXTRA_SPLITS and split in self._splits else check_split(split)]
        return normalize_numpy(unit_scale_numpy(x), self.stats), y
