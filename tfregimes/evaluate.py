"""python -m tfregimes.evaluate --model=RUN/export --dataset=NAME [--split=test] [--output=FILE.json]

Evaluates a trained classifier: a run's export/ directory, any SavedModel (Keras `model.export` or one with a
single-output serving_default signature) or any `.keras` file, as long as the model outputs LOGITS. Inputs are
prepared as `tfregimes.train` prepares them (same normalization, statistics from the full training split).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tfregimes import cli_common  # noqa: E402
from tfregimes.data import NORMALIZATION_CHOICES, DatasetUnavailableError, load_dataset  # noqa: E402
from tfregimes.evaluation import ModelLoadError, evaluate_classifier, load_classifier  # noqa: E402
from tfregimes.summary import evaluation_summary  # noqa: E402
from tfregimes.training.run_dir import write_json  # noqa: E402

flags.DEFINE_string("model", None, "A run's export/ directory, a SavedModel directory or a .keras file; the "
                    "model must output logits.", required=True)
flags.DEFINE_string("dataset", None, f"Dataset: one of {cli_common.DATASET_CHOICES}.", required=True)
flags.DEFINE_string("data_dir", "", "Directory of the data (as for tfregimes.train).")
flags.DEFINE_boolean("download", False, "Let TFDS download a missing dataset (needs internet).")
flags.DEFINE_enum("split", "test", ["test", "train"], "Which split to evaluate on.")
flags.DEFINE_enum("normalization", "auto", list(NORMALIZATION_CHOICES),
                  "Input normalization; must match the one the model was trained with (auto: dataset default).")
flags.DEFINE_integer("batch_size", 512, "Evaluation batch size.", lower_bound=1)
flags.DEFINE_string("output", "", "Write the results as JSON to this file.")
cli_common.register_dataset_validator("dataset")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    cli_common.quiet_python_logs()
    try:
        logits_fn = load_classifier(FLAGS.model)
        data = load_dataset(FLAGS.dataset, data_dir=FLAGS.data_dir or None, normalization=FLAGS.normalization,
                            download=FLAGS.download)
    except (ModelLoadError, DatasetUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = {"model": FLAGS.model, "dataset": FLAGS.dataset, "split": FLAGS.split,
              **evaluate_classifier(logits_fn, data.evaluation(FLAGS.split, FLAGS.batch_size))}
    print(evaluation_summary(result))
    if FLAGS.output:
        write_json(FLAGS.output, result)
        print(f"  written to      {FLAGS.output}")
    return 0


if __name__ == "__main__":
    cli_common.run(main)
