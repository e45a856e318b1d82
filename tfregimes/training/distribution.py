"""Where a run computes: the tf.distribute strategy, logical CPU devices, and the Keras precision policy."""

from __future__ import annotations

import contextlib
import functools
import os

import keras
import tensorflow as tf

from tfregimes.data.base import LoadedDataset
from tfregimes.steps.plain import is_multi_worker

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def split_cpu(num_devices: int) -> None:
    """Splits the physical CPU into `num_devices` logical devices. Must run before TensorFlow uses a device."""
    if num_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError as error:
        raise RuntimeError(f"--num_cpu_devices={num_devices}: TensorFlow has already initialized its devices; "
                           "split the CPU before anything else runs") from error


def prepare_devices(num_cpu_devices: int, strategy: str) -> tf.distribute.Strategy:
    """The device setup of a run, before anything touches a device: the CPU split, then the strategy."""
    split_cpu(num_cpu_devices)
    return make_strategy(strategy)


@functools.cache
def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `name`; mirrored uses every GPU, or every logical CPU device when there is no GPU.

    One per process (cached): MultiWorkerMirroredStrategy must be made before TensorFlow runs anything, so the
    CLI makes it first and the trainer gets the same one."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker":  # The cluster comes from the TF_CONFIG environment variable.
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                             "(docs/training.md, Distribution)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory: always, except on the non-chief workers of a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


def worker_share(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(this worker's index, the number of workers) of a cluster's strategy, chief first; (0, 1) otherwise."""
    if not is_multi_worker(strategy):
        return 0, 1
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    tasks = [(kind, index) for kind in ("chief", "worker") for index in range(len(spec.get(kind, [])))]
    return tasks.index((resolver.task_type, resolver.task_id)), len(tasks)


def all_workers_sum(strategy: tf.distribute.Strategy, values: tf.Tensor) -> tf.Tensor:
    """The sum over the workers of a cluster of each worker's `values` (a collective: every worker must call it,
    as often); counted once per worker, however many devices it has."""
    devices = len(strategy.extended.worker_devices)

    def share():
        first = tf.distribute.get_replica_context().replica_id_in_sync_group % devices == 0
        return tf.where(first, values, tf.zeros_like(values))

    # In a tf.function: eager collectives warn of their overhead at every call.
    return tf.function(lambda: strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(share), axis=None))()


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker runs the whole pipeline and takes its share of every batch (no file sharding)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def training_batches(strategy: tf.distribute.Strategy, data: LoadedDataset, batch_size: int, **train_args):
    """`data.train(batch_size, **train_args)`, as each worker of `strategy` should read it.

    Across the workers of a cluster, a dataset streamed from files (`data.shard_by_file`) gets one pipeline per
    worker that reads only that worker's files (TFDS' per-worker file split, tfregimes.data.imagenet), instead of
    every worker reading and decoding the whole data set to keep 1/n of it. tf.data's AutoShardPolicy.FILE would
    also split the files, but it keeps the global batching, so a worker whose files hold a few examples fewer
    would run out before the others and leave them waiting in a collective; per-worker pipelines give each
    worker exactly its batches. Arrays in memory cost nothing to read: they stay sharded by data, which keeps the
    batches of one device (tests/training/test_distribution.py)."""
    if not is_multi_worker(strategy):
        return data.train(batch_size, **train_args)
    if not data.shard_by_file:
        return shard_by_data(data.train(batch_size, **train_args))
    return strategy.distribute_datasets_from_function(
        lambda context: data.train(batch_size, input_context=context, **train_args))


@contextlib.contextmanager
def precision_policy(name: str):
    """Sets Keras' global dtype policy for the models built inside, and restores the previous one after."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; valid: {', '.join(PRECISIONS)}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
