"""SavedModels that are not tfregimes exports: a plain tf.Module evaluates (its variables outlive the loading), and
one whose graph touches files or Python is refused unless trusted, checked before anything of it runs (issue 24,
items 4 and 6). A model of another input shape than the data is one line (item 5)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import ce_loss, run_cli

from tfregimes.evaluation import EvaluationConfig, evaluate_model

CLASSES = 10
SHAPE = (8, 8, 3)  # The `synthetic` dataset's examples.


def save_linear_module(path, weights, serve_extra=None, signature_shape=(None, *SHAPE)):
    """A tf.Module with one variable W whose single-output serving_default gives the logits flatten(x)·W, after
    running `serve_extra(x)` (an op the model should not run) if given."""
    import tensorflow as tf

    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(weights, dtype=tf.float32)

        @tf.function(input_signature=[tf.TensorSpec(signature_shape, tf.float32)])
        def predict(self, x):
            if serve_extra is not None:
                x = serve_extra(x)
            return {"logits": tf.reshape(x, (tf.shape(x)[0], -1)) @ self.w}

    module = Linear()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.predict})
    return str(path)


@pytest.fixture(scope="module")
def weights():
    return np.random.default_rng(0).normal(size=(int(np.prod(SHAPE)), CLASSES)).astype(np.float32)


def expected_by_hand(weights):
    from tfregimes.data import load_dataset
    x, y = load_dataset("synthetic").arrays("test")  # Its default normalization: none.
    flat = x.reshape(len(x), -1).astype(np.float64)
    return float(np.mean(np.argmax(flat @ weights, axis=1) == y)), ce_loss(weights.astype(np.float64), 0.0, flat, y)


def test_a_plain_tf_module_saved_model_evaluates_to_the_hand_computed_accuracy(weights, tmp_path):
    model = save_linear_module(tmp_path / "linear", weights)
    result = evaluate_model(EvaluationConfig(model=model, dataset="synthetic"))
    accuracy, loss = expected_by_hand(weights)
    assert 0.05 < accuracy < 0.95  # Neither trivial nor perfect: the comparison means something.
    assert result["accuracy"] == accuracy
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
    assert result["examples"] == 256 and result["normalization_carried_by_model"] is False


def write_file(target):
    import tensorflow as tf

    def extra(x):
        tf.io.write_file(str(target), "written by the model")
        return x
    return extra


@pytest.mark.slow(15)
def test_a_saved_model_that_writes_a_file_is_refused_unless_trusted(weights, tmp_path):
    from tfregimes.training.scoring import UntrustedModelError
    target = tmp_path / "written.txt"
    model = save_linear_module(tmp_path / "writer", weights, write_file(target))
    with pytest.raises(UntrustedModelError, match=r"\(WriteFile\), which evaluating it would run; .*--trust_model"):
        evaluate_model(EvaluationConfig(model=model, dataset="synthetic"))
    assert not target.exists()
    output = tmp_path / "eval.json"
    completed = run_cli("tfregimes.evaluate", f"--model={model}", "--dataset=synthetic", f"--output={output}")
    assert completed.returncode == 2 and len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert completed.stderr.startswith(f"error: {model} holds a SavedModel whose graph has ops that touch files")
    assert not target.exists() and not output.exists()
    result = evaluate_model(EvaluationConfig(model=model, dataset="synthetic", trust_model=True))
    assert target.read_text() == "written by the model"
    assert result["accuracy"] == expected_by_hand(weights)[0]


def numpy_function(x):
    import tensorflow as tf
    return tf.numpy_function(lambda a: a, [x], tf.float32, stateful=False)


def save_v2(target):
    import tensorflow as tf

    def extra(x):
        tf.raw_ops.SaveV2(prefix=str(target), tensor_names=["x"], shape_and_slices=[""], tensors=[x])
        return x
    return extra


def print_to(target):
    import tensorflow as tf

    def extra(x):
        tf.print(x, output_stream=f"file://{target}")
        return x
    return extra


@pytest.mark.parametrize("make_extra, op", [
    (lambda target: numpy_function, "PyFuncStateless"),
    # The checkpoint ops are allowed in the saver's own functions only, not in the serving function.
    (save_v2, "SaveV2"),
    (print_to, "PrintV2"),
])
def test_ops_reaching_outside_the_computation_are_found_in_the_function_library(weights, tmp_path, make_extra, op):
    from tfregimes.training.saved_model_ops import dangerous_ops
    model = save_linear_module(tmp_path / "model", weights, make_extra(tmp_path / "target"))
    assert dangerous_ops(model) == [op]
    assert not list(tmp_path.glob("target*"))  # Reading the graph ran nothing.


def test_our_exports_and_a_plain_module_hold_no_dangerous_op(tiny_run, weights, tmp_path):
    """The save/restore functions every SavedModel has (SaveV2, RestoreV2, MergeV2Checkpoints) do not count."""
    from tfregimes.training.saved_model_ops import dangerous_ops
    assert dangerous_ops(tiny_run[1].run_dir.saved_model_dir) == []
    assert dangerous_ops(save_linear_module(tmp_path / "linear", weights)) == []


@pytest.mark.parametrize("model_path", ["export", "saved_model", "keras", "unknown_shape"])
def test_a_model_of_another_input_shape_is_one_line_naming_both_shapes(tiny_run, weights, tmp_path, model_path):
    """The tiny run (synthetic, 8×8×3) on digits (8×8×1): refused before the evaluation, nothing written."""
    from tfregimes.data import load_dataset
    from tfregimes.training.scoring import ModelLoadError, check_classes, load_classifier
    run_dir = tiny_run[1].run_dir
    path = {"export": run_dir.export_dir, "saved_model": run_dir.saved_model_dir,
            "keras": run_dir.keras_model_path,
            "unknown_shape": save_linear_module(tmp_path / "open", weights, signature_shape=None)}[model_path]
    digits = load_dataset("digits", normalization="none")
    takes = "inputs of another shape" if model_path == "unknown_shape" else "inputs of shape (8, 8, 3) (one example)"
    with pytest.raises(ModelLoadError, match=rf"^the model takes {re.escape(takes)} but digits's examples have "
                                             r"shape \(8, 8, 1\); evaluate it with the --dataset"):
        check_classes(load_classifier(path), digits, "test")


@pytest.mark.slow(15)
def test_the_evaluate_cli_reports_another_input_shape_in_one_line(tiny_run, tmp_path):
    output = tmp_path / "eval.json"
    completed = run_cli("tfregimes.evaluate", f"--model={tiny_run[1].run_dir.export_dir}", "--dataset=digits",
                        f"--output={output}", "--metrics=margins")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "error: the model takes inputs of shape (8, 8, 3) (one example) but digits's examples have shape (8, 8, 1); "
        "evaluate it with the --dataset (and its options) it was trained on"], completed.stderr
    assert not output.exists()

