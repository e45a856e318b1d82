"""ImageNet (TFDS imagenet2012), streamed from disk: it does not fit in memory.

Training reads the files in an order seeded by (seed, epoch) and shuffles through a buffer, then
applies the `imagenet` recipe of seed 000 A.2 (or, with another augmentation, the evaluation crop
followed by that augmentation). Evaluation resizes the shorter side to 256 and takes the central
224 x 224 crop. Unlike the in-memory datasets, a resumed run is not guaranteed bit-identical
batches: TFDS' parallel file reads make the order only approximately reproducible.
The "test" split is ImageNet's validation set.

Across the workers of a cluster (`train(input_context=...)`), each worker reads only its own training files:
TFDS assigns file i to worker i mod n before the seeded file shuffle, so the shares are disjoint whatever the
seeds, and together they are the epoch. Sharding by file needs at least as many files as workers (TFDS refuses
fewer) and whole files: with fewer files, or a --train_subset (the first N examples in file order), every worker
reads the same files in the same (seed, epoch)-seeded order and keeps every n-th example instead.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from tfregimes.data.augmentation import AUGMENTATIONS, IMAGENET_CROP, imagenet_eval_crop
from tfregimes.data.base import DatasetInfo, LoadedDataset, LoadRequest, check_epochs, check_split
from tfregimes.data.fingerprint import FINGERPRINTS
from tfregimes.data.normalization import NormalizationStats, fixed_stats, normalize_tf, resolve_normalization
from tfregimes.data.pipeline import item_seed
from tfregimes.data.registry import DATASETS
from tfregimes.data.sizes import TRAIN_SIZES
from tfregimes.data.tfds_sources import tfds_fingerprint, tfds_load, tfds_split_size

TFDS_NAME = "imagenet2012"
TFDS_SPLITS = {"train": "train", "test": "validation"}
NUM_CLASSES = 1000
# The usual ImageNet channel statistics of [0, 1] RGB pixels (seed 000 A.2 normalizes channel-wise).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SHUFFLE_BUFFER = 10_000


def _python_seed(seed: int, epoch: int) -> int:
    """An int seed for TFDS' file order and the shuffle buffer, from (seed, epoch) only."""
    return int(np.random.SeedSequence([seed % 2**63, epoch]).generate_state(1)[0])


def _num_files(info, tfds_split: str) -> int:
    """The split's record files; 0 where the info does not say (tfds.testing.mock_data)."""
    return int(info.splits[tfds_split].num_shards) if tfds_split in info.splits else 0


def _num_examples(info, tfds_split: str, dataset: tf.data.Dataset) -> int:
    split_info = info.splits[tfds_split] if tfds_split in info.splits else None
    if split_info is not None and split_info.num_examples:
        return int(split_info.num_examples)
    count = int(dataset.cardinality())  # mocked datasets carry no split sizes
    if count < 0:
        raise ValueError(f"cannot tell how many examples {TFDS_NAME}/{tfds_split} holds")
    return count


class StreamingImageNet(LoadedDataset):
    shard_by_file = True

    def __init__(self, info: DatasetInfo, request: LoadRequest, stats: NormalizationStats | None,
                 train_files: int = 0):
        super().__init__(info)
        self._request = request
        self.stats = stats
        self._train_files = train_files

    @classmethod
    def load(cls, name: str, request: LoadRequest) -> StreamingImageNet:
        normalization = resolve_normalization(request.normalization, "per_channel")
        if normalization == "per_pixel":
            raise ValueError("imagenet2012 supports normalization per_channel (the standard "
                             "ImageNet statistics) or none, not per_pixel")
        stats = fixed_stats(IMAGENET_MEAN, IMAGENET_STD) if normalization == "per_channel" else None
        sizes = {}
        for split, tfds_split in TFDS_SPLITS.items():  # fails fast when the data is missing
            dataset, info = tfds_load(TFDS_NAME, tfds_split, request)
            sizes[split] = _num_examples(info, tfds_split, dataset)
        train_files = _num_files(info, TFDS_SPLITS["train"])
        num_train = sizes["train"]
        if request.train_subset is not None:
            if not 1 <= request.train_subset <= num_train:
                raise ValueError(f"train_subset={request.train_subset} must be between 1 and the "
                                 f"{num_train} training examples available")
            num_train = request.train_subset
        info = DatasetInfo(name=name, input_shape=(IMAGENET_CROP, IMAGENET_CROP, 3),
                           num_classes=NUM_CLASSES, num_train=num_train, num_test=sizes["test"],
                           normalization=normalization, in_memory=False)
        return cls(info, request, stats, train_files)

    def _read(self, split: str, shuffle_seed: int | None,
              input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """(uint8 image, int32 label) pairs; the training subset is the first N in file order.
        `input_context`: only that input pipeline's files."""
        import tensorflow_datasets as tfds

        subset = self._request.train_subset if split == "train" else None
        read = {}
        if shuffle_seed is not None and subset is None:
            read["shuffle_seed"] = shuffle_seed
        if input_context is not None:
            read["input_context"] = input_context
        kwargs = dict(shuffle_files="shuffle_seed" in read, read_config=tfds.ReadConfig(**read)) if read else {}
        dataset, _ = tfds_load(TFDS_NAME, TFDS_SPLITS[split], self._request, **kwargs)
        if subset is not None:
            dataset = dataset.take(subset)
        return dataset.map(lambda image, label: (image, tf.cast(label, tf.int32)))

    def _shards_by_file(self, input_context: tf.distribute.InputContext | None) -> bool:
        """Whether this pipeline reads only its own files (see the module docstring)."""
        return (input_context is not None and input_context.num_input_pipelines > 1
                and self._request.train_subset is None and self._train_files >= input_context.num_input_pipelines)

    def _epoch(self, epoch: int, batch_size: int, steps: int, seed: int, augmentation,
               input_context: tf.distribute.InputContext | None = None):
        epoch_seed = _python_seed(seed, epoch)
        pipelines, pipeline = ((input_context.num_input_pipelines, input_context.input_pipeline_id)
                               if input_context is not None else (1, 0))
        by_file = self._shards_by_file(input_context)
        examples = self._read("train", shuffle_seed=epoch_seed, input_context=input_context if by_file else None)
        if pipelines > 1 and not by_file:
            # Every pipeline reads the same files in the same order (seeded by (seed, epoch) alone, and read
            # deterministically), so taking every n-th example before the shuffle buffer splits the epoch.
            examples = examples.shard(pipelines, pipeline)
        examples = examples.shuffle(SHUFFLE_BUFFER, seed=epoch_seed, reshuffle_each_iteration=False)
        if pipelines > 1:
            # Files may hold unequal numbers of examples, but every worker must give exactly its `steps` batches
            # (a worker that runs out first leaves the others waiting in a collective): a short share wraps around.
            # Example k of pipeline p is example k * n + p of the epoch: no two workers augment alike.
            examples = (examples.repeat().enumerate()
                        .map(lambda index, pair: (index * pipelines + pipeline, pair)))
        else:
            examples = examples.enumerate()
        if augmentation.example_fn is not None:
            crop = lambda index, pair: (augmentation.example_fn(pair[0],  # noqa: E731
                                                                item_seed(seed, epoch, index)),
                                        pair[1])
        else:
            crop = lambda index, pair: (imagenet_eval_crop(pair[0]), pair[1])  # noqa: E731
        batches = (examples.map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                   .batch(batch_size, drop_remainder=True).take(steps))
        if augmentation.batch_fn is not None and not augmentation.is_identity:
            batches = batches.enumerate().map(
                lambda step, pair: (augmentation.batch_fn(pair[0], item_seed(seed, epoch, step * pipelines + pipeline)),
                                    pair[1]),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return batches

    def train(self, batch_size: int, *, seed: int, augment: str = "none", start_epoch: int = 0,
              num_epochs: int, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        augmentation = AUGMENTATIONS.get(augment)
        check_epochs(start_epoch, num_epochs)
        steps = self.steps_per_epoch(batch_size)
        if input_context is not None:  # Each of this worker's replicas takes one per-replica batch per step.
            replica_batch = input_context.get_per_replica_batch_size(batch_size)
            steps *= batch_size // (replica_batch * input_context.num_input_pipelines)
            batch_size = replica_batch
        epochs = [self._epoch(epoch, batch_size, steps, seed, augmentation, input_context)
                  for epoch in range(start_epoch, max(num_epochs, start_epoch + 1))]
        dataset = functools.reduce(lambda first, second: first.concatenate(second), epochs)
        if num_epochs == start_epoch:
            dataset = dataset.take(0)
        stats = self.stats
        dataset = dataset.map(lambda images, labels: (normalize_tf(images, stats), labels),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def evaluation(self, split: str, batch_size: int, *, rows: np.ndarray | None = None) -> tf.data.Dataset:
        stats = self.stats
        dataset = self._read(check_split(split), shuffle_seed=None)
        if rows is not None:  # Streamed: read every example, keep those of `rows`.
            keep = tf.constant(np.isin(np.arange(int(rows.max()) + 1), rows))
            dataset = (dataset.enumerate().take(len(keep))
                       .filter(lambda index, example: tf.gather(keep, index))
                       .map(lambda index, example: example))
        dataset = (dataset
                   .map(lambda image, label: (imagenet_eval_crop(image), label),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                   .batch(batch_size)
                   .map(lambda images, labels: (normalize_tf(images, stats), labels)))
        return dataset.prefetch(tf.data.AUTOTUNE)


DATASETS.register(TFDS_NAME, StreamingImageNet.load)
FINGERPRINTS.register(TFDS_NAME, lambda data_dir: tfds_fingerprint(TFDS_NAME, data_dir))
TRAIN_SIZES.register(TFDS_NAME, lambda data_dir, svhn_extra: tfds_split_size(TFDS_NAME, data_dir, "train"))
