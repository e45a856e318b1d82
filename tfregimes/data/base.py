"""The types every dataset source shares: what was asked for, raw arrays, and a loaded dataset."""

from __future__ import annotations

import abc
import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class LoadRequest:
    """The arguments of `load_dataset`, handed to every source."""

    data_dir: str | None = None
    train_subset: int | None = None
    confusion_size: int = 0  # Random-labelled extra training images (seed 004's confusion set); needs train_subset.
    validation_split: float = 0.0  # Share of the training examples held out as the "validation" split.
    normalization: str = "auto"
    seed: int = 0
    svhn_extra: bool = False
    download: bool = False


@dataclasses.dataclass(frozen=True)
class SplitArrays:
    """A dataset held in memory, before subsetting and normalization.

    Images are NHWC, flat data is (N, D). uint8 inputs are divided by 255 to land in [0, 1];
    float inputs are taken as already scaled. Labels are integer class ids.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    default_normalization: str
    # Normalization statistics use the first `stats_rows` training rows (None: all of them). SVHN
    # with its extra split uses only the standard training split, so the statistics and hence the
    # test inputs do not depend on --svhn_extra.
    stats_rows: int | None = None

    # Checked when loaded (tfregimes.data.validation), where the dataset's name is known.


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model builder and a run record need to know about a loaded dataset."""

    name: str
    input_shape: tuple[int, ...]  # one example, e.g. (8, 8, 1); (40,) for flat data
    num_classes: int
    num_train: int  # after --train_subset; without the confusion set, which is trained on but not measured
    num_test: int
    normalization: str  # resolved: "none", "per_pixel" or "per_channel"
    in_memory: bool
    num_confusion: int = 0  # random-labelled images appended to training (tfregimes.data.confusion)
    num_validation: int = 0  # training examples held out, not trained on (--validation_split)

    @property
    def num_fit(self) -> int:
        """The examples an epoch trains on: the training subset and the confusion set."""
        return self.num_train + self.num_confusion

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class LoadedDataset(abc.ABC):
    """A dataset ready to feed Keras: epoch-seeded training batches and evaluation batches."""

    # The normalization statistics the pipelines apply (a NormalizationStats, None for `none`); a run's export
    # carries them (tfregimes.training.export).
    stats = None
    # Declared by the source: whether training streams from files that the workers of a cluster can split among
    # themselves (`train(input_context=...)` reads only one worker's share). Otherwise workers split by data: each
    # runs the whole pipeline and keeps its share of every batch, which costs nothing extra for arrays in memory.
    shard_by_file = False

    def __init__(self, info: DatasetInfo):
        self.info = info

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches per epoch; training drops the remainder."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        steps = self.info.num_fit // batch_size
        if steps == 0:
            raise ValueError(f"batch_size {batch_size} exceeds the {self.info.num_fit} training "
                             f"examples of {self.info.name}; not even one full batch per epoch")
        return steps

    @abc.abstractmethod
    def train(self, batch_size: int, *, seed: int, augment: str = "none", start_epoch: int = 0,
              num_epochs: int, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """Epochs start_epoch .. num_epochs-1 back to back, each exactly steps_per_epoch batches of
        (float32 images, int32 labels). Feed it to `model.fit(..., initial_epoch=start_epoch,
        epochs=num_epochs, steps_per_epoch=steps_per_epoch(batch_size))`.

        `input_context` (only where `shard_by_file`): the batches of one input pipeline of a cluster, for
        `strategy.distribute_datasets_from_function`: its share of each epoch, in per-replica batches."""

    @abc.abstractmethod
    def evaluation(self, split: str, batch_size: int, *, rows: np.ndarray | None = None) -> tf.data.Dataset:
        """Every example of `split` ("train" or "test"; "confusion" and "validation" where there are) once, in order,
        unaugmented; the last batch may be smaller. "train" is the training subset without the confusion set.
        `rows`: only these examples (sorted row numbers of the split), in the same pipeline."""

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(normalized float32 inputs, int32 labels) of `split`, for in-memory datasets."""
        raise ValueError(f"{self.info.name} is streamed from disk and has no in-memory arrays; "
                         f"use evaluation({split!r}, batch_size) instead")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info})"


def check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def check_epochs(start_epoch: int, num_epochs: int) -> None:
    if not 0 <= start_epoch <= num_epochs:
        raise ValueError(f"need 0 <= start_epoch <= num_epochs, got start_epoch={start_epoch}, "
                         f"num_epochs={num_epochs}")
