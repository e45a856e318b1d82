"""Exports are self-contained: they take inputs as the dataset yields them before normalization (floats in [0, 1])
and carry the run's normalization, so evaluating them anywhere gives the run's numbers (issue 12, item 1)."""

import json
import math

import numpy as np
import pytest
from helpers import run_cli, tiny_config

from tfregimes.training import train_and_evaluate

NORMALIZATIONS = ("none", "per_pixel", "per_channel")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 1-epoch run per normalization on `synthetic` (whose default is none)."""
    root = tmp_path_factory.mktemp("export_runs")
    return {name: train_and_evaluate(tiny_config(root / name, epochs=1, lr_schedule="constant", lr_boundaries=(),
                                                   normalization=name))
            for name in NORMALIZATIONS}


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_every_export_evaluates_to_the_run_metrics(runs, normalization):
    from tfregimes.data import load_dataset
    from tfregimes.training.scoring import (
        evaluate_classifier,
        load_classifier,
        normalization_to_load,
    )
    result = runs[normalization]
    for path in (result.run_dir.export_dir, result.run_dir.saved_model_dir, result.run_dir.keras_model_path):
        # What the evaluate CLI does without --normalization: the export says what it carries.
        data = load_dataset("synthetic", normalization=normalization_to_load(path, "auto"))
        evaluation = evaluate_classifier(load_classifier(path), data.evaluation("test", 512))
        assert evaluation["accuracy"] == result.metrics["test_accuracy"], path
        assert math.isclose(evaluation["loss"], result.metrics["test_loss"], rel_tol=1e-6), path


@pytest.mark.parametrize("normalization", ["per_pixel", "per_channel"])
def test_the_saved_model_alone_takes_unnormalized_inputs(runs, normalization):
    """Anyone's code: tf.saved_model.load and the serve endpoint on inputs in [0, 1] give the run's logits."""
    import tensorflow as tf

    from tfregimes.data import load_dataset
    result = runs[normalization]
    raw_x, labels = load_dataset("synthetic", normalization="none").arrays("test")
    normalized_x, _ = load_dataset("synthetic", normalization=normalization).arrays("test")
    loaded = tf.saved_model.load(str(result.run_dir.saved_model_dir))  # kept: its variables live as long as it
    served = loaded.serve(raw_x).numpy()
    from tfregimes.training.scoring import load_keras_model, split_input_normalization
    network, layer = split_input_normalization(load_keras_model(result.run_dir.keras_model_path))
    assert layer.normalization == normalization
    np.testing.assert_allclose(served, network(normalized_x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    accuracy = float(np.mean(np.argmax(served, axis=-1) == labels))
    assert accuracy == result.metrics["test_accuracy"]


def test_evaluate_cli_uses_the_carried_normalization_and_refuses_a_contradiction(runs, tmp_path):
    result = runs["per_channel"]
    output = tmp_path / "eval.json"
    completed = run_cli("tfregimes.evaluate", f"--model={result.run_dir.export_dir}", "--dataset=synthetic",
                        f"--output={output}")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(output.read_text())["accuracy"] == result.metrics["test_accuracy"]
    assert "per_channel (carried by the model)" in completed.stdout
    from tfregimes.training.scoring import ModelLoadError, normalization_to_load
    with pytest.raises(ModelLoadError, match="carries normalization per_channel; --normalization=none contradicts it"):
        normalization_to_load(result.run_dir.keras_model_path, "none")
    assert normalization_to_load(result.run_dir.saved_model_dir, "per_channel") == "none"  # Agreeing is fine.



PLAIN_KERAS = """
import sys
import keras
import numpy as np
x = np.load(sys.argv[1])
for model_path, logits_path in zip(sys.argv[2::2], sys.argv[3::2]):
    np.save(logits_path, keras.saving.load_model(model_path)(x, training=False))
assert not [name for name in sys.modules if name.split(".")[0] == "tfregimes"], "tfregimes was imported"
print("ok")
"""


@pytest.mark.slow(20)
def test_the_keras_export_loads_with_plain_keras_without_tfregimes(runs, tmp_path):
    """Issue 24, item 4: a process that never imports tfregimes loads export/model.keras and gets the run's logits
    (Keras' Identity for `none`, its Normalization for the others)."""
    import subprocess
    import sys

    from tfregimes.data import load_dataset
    from tfregimes.training.scoring import load_keras_model, split_input_normalization
    raw_x, _ = load_dataset("synthetic", normalization="none").arrays("test")
    np.save(tmp_path / "x.npy", raw_x)
    names = ("none", "per_pixel", "per_channel")
    pairs = [str(path) for name in names for path in (runs[name].run_dir.keras_model_path, tmp_path / f"{name}.npy")]
    completed = subprocess.run([sys.executable, "-c", PLAIN_KERAS, str(tmp_path / "x.npy"), *pairs],
                               cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0 and completed.stdout.strip() == "ok", completed.stderr
    for name in names:
        normalized_x, _ = load_dataset("synthetic", normalization=name).arrays("test")
        network, carried = split_input_normalization(load_keras_model(runs[name].run_dir.keras_model_path))
        assert carried.normalization == name
        np.testing.assert_array_equal(carried.normalize_numpy(raw_x), normalized_x)  # The pipeline's, bitwise.
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), network(normalized_x, training=False).numpy(),
                                   rtol=1e-5, atol=1e-5)
