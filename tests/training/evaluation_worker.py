"""One worker of tests/training/test_sharded_evaluation.py (TF_CONFIG names the cluster): evaluates the same small
network on synthetic's training split (512 examples, 8 batches of 64) as the trainer's final metrics do, inside the
cluster's strategy and outside any, and writes to OUT both results and how many examples this worker's network saw.

    python evaluation_worker.py OUT
"""

import json
import sys

import keras
import tensorflow as tf

from tfregimes.data import load_dataset
from tfregimes.models import build_model
from tfregimes.training.distribution import make_strategy
from tfregimes.training.scoring import classifier_evaluation


def main(out_path: str) -> None:
    strategy = make_strategy("multi_worker")
    data = load_dataset("synthetic")
    seen = tf.Variable(0, dtype=tf.int64)  # Outside the scope: this worker's own counter.
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build_model("mlp", input_shape=data.info.input_shape, num_classes=data.info.num_classes)

    def logits(images):
        seen.assign_add(tf.cast(tf.shape(images)[0], tf.int64))
        return model(images, training=False)

    evaluate = classifier_evaluation(logits)
    whole = evaluate(data.evaluation("train", 64))  # The default strategy: the whole split here.
    seen_whole = int(seen.numpy())
    seen.assign(0)
    with strategy.scope():
        shared = evaluate(data.evaluation("train", 64))
    with open(out_path, "w") as file:
        json.dump({"whole": whole, "shared": shared, "seen_whole": seen_whole, "seen_shared": int(seen.numpy())},
                  file)


if __name__ == "__main__":
    main(sys.argv[1])
