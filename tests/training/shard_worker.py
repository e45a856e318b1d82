"""One worker of tests/training/test_sharding.py (TF_CONFIG names the cluster): reads one training epoch through
`training_batches`, as the trainer does, and writes to OUT what this worker got.

    python shard_worker.py OUT IMAGENET_DATA_DIR

imagenet2012 (streamed from files): the labels, which the test's mock makes unique example ids. synthetic (in
memory): per step, a fingerprint of each example this worker got and of each example of the undistributed batch.
"""

import hashlib
import json
import sys

import tensorflow as tf

from tfregimes.data import load_dataset
from tfregimes.training.distribution import make_strategy, training_batches


def distributed(strategy, dataset):
    """As Keras' fit distributes its input (keras/src/backend/tensorflow/trainer.py, TFEpochIterator)."""
    if isinstance(dataset, tf.distribute.DistributedDataset):
        return dataset
    return strategy.experimental_distribute_dataset(dataset)


def local_values(strategy, value):
    return [row for part in strategy.experimental_local_results(value) for row in part.numpy()]


def fingerprints(images, labels):
    return [f"{int(label)}:{hashlib.sha1(image.tobytes()).hexdigest()[:16]}" for image, label in zip(images, labels)]


def main(out_path: str, imagenet_dir: str) -> None:
    strategy = make_strategy("multi_worker")
    record = {}

    imagenet = load_dataset("imagenet2012", data_dir=imagenet_dir)
    batches = iter(distributed(strategy, training_batches(strategy, imagenet, 4, seed=0, num_epochs=1)))
    labels = []
    for _ in range(imagenet.steps_per_epoch(4)):
        labels += [int(label) for label in local_values(strategy, next(batches)[1])]
    record["imagenet2012"] = labels

    synthetic = load_dataset("synthetic")
    batches = iter(distributed(strategy, training_batches(strategy, synthetic, 32, seed=0, num_epochs=1)))
    undistributed = iter(synthetic.train(32, seed=0, num_epochs=1))
    steps = []
    for _ in range(synthetic.steps_per_epoch(32)):
        images, labels = next(batches)
        whole_images, whole_labels = next(undistributed)
        steps.append({"worker": fingerprints(local_values(strategy, images), local_values(strategy, labels)),
                      "whole": fingerprints(whole_images.numpy(), whole_labels.numpy())})
    record["synthetic"] = steps

    with open(out_path, "w") as file:
        json.dump(record, file)


if __name__ == "__main__":
    main(*sys.argv[1:])
