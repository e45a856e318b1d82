"""Multi-worker input on 2 localhost workers: a data set streamed from files is split by file (each worker opens only
its own), one held in memory by data (each worker gets its half of every global batch)."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import localhost_workers

NUM_TRAIN = 16  # labels 0..15: each training example's label is its id


def write_tiny_imagenet(data_dir: Path) -> list[list[int]]:
    """imagenet2012 in TFDS' prepared format (the real builder's features and file layout), with 16 training
    examples in 2 record files; returns the ids each training file holds, read from the file itself."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    class TinyImagenet(tfds.builder_cls("imagenet2012"), skip_registration=True):
        name = "imagenet2012"
        MANUAL_DOWNLOAD_INSTRUCTIONS = None

        def _split_generators(self, dl_manager):
            return {"train": self._examples(range(NUM_TRAIN)), "validation": self._examples(range(100, 104))}

        def _examples(self, labels):
            for label in labels:
                yield str(label), {"image": np.full((8, 8, 3), label, np.uint8), "label": label,
                                   "file_name": f"{label}.JPEG"}

    builder = TinyImagenet(data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=2))
    files = builder.info.splits["train"].filenames
    assert len(files) == 2
    return [sorted(int(example["label"]) for example in
                   tf.data.TFRecordDataset(str(Path(builder.data_dir) / name))
                   .map(builder.info.features.deserialize_example).as_numpy_iterator())
            for name in files]


@pytest.fixture(scope="module")
def tiny_imagenet(tmp_path_factory):
    """(data_dir, the ids of each training file)."""
    data_dir = tmp_path_factory.mktemp("tiny_imagenet")
    file_ids = write_tiny_imagenet(data_dir)
    assert sorted(file_ids[0] + file_ids[1]) == list(range(NUM_TRAIN)) and file_ids[0] and file_ids[1]
    return data_dir, file_ids


def epoch_ids(data, batch_size: int, context=None) -> list[int]:
    """The ids of one training epoch, as one input pipeline reads it."""
    return [int(label) for _, labels in data.train(batch_size, seed=0, num_epochs=1, input_context=context)
            for label in labels.numpy()]


@pytest.mark.parametrize("pipelines, subset", [(3, None), (2, 12)], ids=["fewer_files_than_workers", "subset"])
def test_fewer_files_than_workers_or_a_subset_split_the_epoch_by_data(tiny_imagenet, pipelines, subset):
    import tensorflow as tf

    from tfregimes.data import load_dataset

    data = load_dataset("imagenet2012", data_dir=str(tiny_imagenet[0]), train_subset=subset)
    batch_size = 3 if subset is None else 4
    whole = epoch_ids(data, batch_size)
    shares = [epoch_ids(data, batch_size, tf.distribute.InputContext(pipelines, index, pipelines))
              for index in range(pipelines)]
    steps = data.steps_per_epoch(batch_size)
    assert [len(share) for share in shares] == [steps * batch_size // pipelines] * pipelines
    everything = [i for share in shares for i in share]
    assert len(set(everything)) == len(everything)  # disjoint
    if subset is None:  # 16 examples in 3 shares of 5: one example left out, as a single reader's last batch.
        assert set(everything) < set(range(NUM_TRAIN)) and len(everything) == 15
    else:  # The subset: the same 12 examples a single reader trains on.
        assert sorted(everything) == sorted(whole) and len(whole) == subset


@pytest.mark.slow(45)
def test_two_workers_read_their_own_files_of_a_streamed_set_and_share_batches_of_an_in_memory_one(
        tiny_imagenet, tmp_path):
    source, file_ids = tiny_imagenet
    # TFDS gives worker i the files i, i + n, ...: each worker's copy of the data has the other worker's training
    # file overwritten with garbage, so a worker that opened a file not its own fails reading it.
    data_dirs = []
    for index in range(2):
        copy = shutil.copytree(source, tmp_path / f"worker{index}")
        version_dir = next((copy / "imagenet2012").iterdir())
        other = sorted(version_dir.glob("imagenet2012-train.tfrecord-*"))[1 - index]
        other.write_bytes(b"\xff" * other.stat().st_size)
        data_dirs.append(copy)
    workers = localhost_workers(lambda index: [sys.executable, str(Path(__file__).with_name("shard_worker.py")),
                                               str(tmp_path / f"worker{index}.json"), str(data_dirs[index])])
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):  # DataLossError: a worker opened the other's file
        assert worker.returncode == 0, stderr[-3000:]
    records = [json.loads((tmp_path / f"worker{index}.json").read_text()) for index in range(2)]

    # Streamed: worker i read exactly the examples of file i, each once; together they are the epoch.
    assert [sorted(record["imagenet2012"]) for record in records] == file_ids
    # In memory: each step, worker 0 took the first half of the undistributed global batch and worker 1 the rest.
    steps = [record["synthetic"] for record in records]
    assert len(steps[0]) == len(steps[1]) == 512 // 32
    for first, second in zip(*steps):
        assert first["whole"] == second["whole"] and len(first["whole"]) == 32
        assert first["worker"] + second["worker"] == first["whole"]
