"""Errors a user can act on (issue 12, items 5, 6, 8, 9): hints that work when followed literally, refused flag
combinations, summaries that match the JSON, one-line errors in place of tracebacks."""

import json
import shlex

import pytest
from absl import flags
from helpers import run_cli

from tfregimes.cli import train_flag_rules, train_flags  # noqa: F401  (the rules module registers the validators)
from tfregimes.training import RunConfigMismatch, train_and_evaluate

FLAGS = flags.FLAGS


def test_the_hint_for_changed_flags_resumes_the_run_when_followed_literally(tiny_run):
    config, result = tiny_run
    with pytest.raises(RunConfigMismatch) as raised:
        train_and_evaluate(config.replace(epochs=5))
    hint = str(raised.value).split("Resume it with: ")[1].split(" (or ")[0]
    assert hint == (f"python -m tfregimes.train --flagfile={result.run_dir.flags_path} "
                    f"--model_dir={result.run_dir.root}")
    completed = run_cli(*shlex.split(hint)[2:])
    assert completed.returncode == 0, completed.stderr
    assert "Run already complete" in completed.stdout and str(result.run_dir.root) in completed.stdout


def test_jit_compile_under_op_determinism_is_refused(tmp_path):
    try:
        with pytest.raises(flags.IllegalFlagValueError,
                           match="--jit_compile needs --nodeterministic: TensorFlow's op determinism turns XLA off"):
            FLAGS(["tfregimes.train", "--jit_compile"])
    finally:
        FLAGS.unparse_flags()
    try:
        FLAGS(["tfregimes.train", "--jit_compile", "--nodeterministic"])
        config = train_flags.config_from_flags()
        assert config.jit_compile and not config.deterministic
    finally:
        FLAGS.unparse_flags()


def test_evaluate_summary_counts_the_examples_the_json_reports(tiny_run, tmp_path):
    output = tmp_path / "eval.json"
    completed = run_cli("tfregimes.evaluate", f"--model={tiny_run[1].run_dir.export_dir}", "--dataset=synthetic",
                        "--metrics=robustness", "--metrics_samples=100", f"--output={output}")
    assert completed.returncode == 0, completed.stderr
    evaluation = json.loads(output.read_text())
    assert evaluation["examples"] == 256 and evaluation["metrics_examples"] == 100
    assert evaluation["command"].startswith("python -m tfregimes.evaluate --model=") and "--metrics_samples=100" in \
        evaluation["command"]
    assert "(test split, 256 examples)" in completed.stdout
    assert "on the train split (a fixed sample of 100 of its 512 examples)" in completed.stdout


# --- Item 9: one line, not a traceback ---

TRAIN_FLAGS = ["--dataset=synthetic", "--model=mlp", "--hidden_sizes=8", "--epochs=1", "--batch_size=64",
               "--lr_schedule=constant", "--verbose=0"]


def _train_main(monkeypatch, tmp_path, *args):
    from tfregimes.cli import train
    try:
        FLAGS(["tfregimes.train", *TRAIN_FLAGS, f"--model_dir={tmp_path / 'run'}", *args])
        return train.main(["tfregimes.train"])
    finally:
        FLAGS.unparse_flags()


def test_an_unwritable_model_dir_is_one_line(monkeypatch, tmp_path, capsys):
    import errno

    from tfregimes.base import run_dir

    def refuse(self):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.root))
    monkeypatch.setattr(run_dir.RunDirectory, "create", refuse)  # As root, chmod would not stop the test.
    assert _train_main(monkeypatch, tmp_path) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"error: cannot write {tmp_path / 'run'}: Permission denied; pass a --model_dir you can "
                     "write to")


def test_a_full_disk_is_one_line_and_the_run_stays_resumable(monkeypatch, tmp_path, capsys):
    import errno

    from tfregimes.base import run_dir

    real_write = run_dir.write_atomically

    def full_for_history(path, text):
        if str(path).endswith("history.csv"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, text)
    monkeypatch.setattr(run_dir, "write_atomically", full_for_history)
    assert _train_main(monkeypatch, tmp_path) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: cannot write {tmp_path / 'run' / 'history.csv'}: No space left on device; "
                            "free some space and rerun the same command")
    assert not (tmp_path / "run" / "progress.json").exists()  # Nothing claims an epoch whose files are missing.


@pytest.fixture(scope="module")
def damaged_models(tiny_run, tmp_path_factory):
    import shutil
    root = tmp_path_factory.mktemp("damaged")
    saved_model = root / "saved_model"
    shutil.copytree(tiny_run[1].run_dir.saved_model_dir, saved_model)
    (saved_model / "saved_model.pb").write_bytes(b"\x08garbage")
    keras_file = root / "model.keras"
    keras_file.write_bytes(tiny_run[1].run_dir.keras_model_path.read_bytes()[:2000])
    return saved_model, keras_file


def test_damaged_models_are_named_as_damaged(damaged_models):
    from tfregimes.training.scoring import ModelLoadError, load_classifier, load_keras_model
    saved_model, keras_file = damaged_models
    with pytest.raises(ModelLoadError, match=f"{saved_model} holds a SavedModel that cannot be read"):
        load_classifier(saved_model)
    for load in (load_classifier, load_keras_model):
        with pytest.raises(ModelLoadError, match=f"{keras_file} is not a readable .keras file"):
            load(keras_file)


def test_evaluate_cli_reports_a_damaged_keras_file_in_one_line(damaged_models):
    # A fresh interpreter: its stderr includes what importing TensorFlow writes (a preloaded one imported it earlier).
    completed = run_cli("tfregimes.evaluate", f"--model={damaged_models[1]}", "--dataset=synthetic", preloaded=False)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    # The one line is all of stderr: TensorFlow's start-up lines (cuInit on a CPU machine) are filtered.
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert completed.stderr.startswith(f"error: {damaged_models[1]} is not a readable .keras file")
    assert "not found" not in completed.stderr.lower()


def _npz_with_classes(tmp_path, num_classes):
    import numpy as np

    from tfregimes.data import load_dataset
    x_train, y_train = load_dataset("synthetic").arrays("train")
    x_test, y_test = load_dataset("synthetic").arrays("test")
    path = tmp_path / f"classes{num_classes}.npz"
    np.savez(path, x_train=x_train, y_train=np.arange(len(y_train)) % num_classes, x_test=x_test,
             y_test=np.arange(len(y_test)) % num_classes)
    return load_dataset(f"npz:{path}")


def test_a_model_with_fewer_classes_than_the_labels_is_refused_and_more_noted(tiny_run, tmp_path):
    from tfregimes.training.scoring import ModelLoadError, check_classes, load_classifier
    logits_fn = load_classifier(tiny_run[1].run_dir.export_dir)
    with pytest.raises(ModelLoadError, match=r"outputs 10 classes but npz:.* has 12 \(labels 0\.\.11\)"):
        check_classes(logits_fn, _npz_with_classes(tmp_path, 12), "test")
    note = check_classes(logits_fn, _npz_with_classes(tmp_path, 4), "test")
    assert note.startswith("note: the model outputs 10 classes, npz:") and "has 4" in note
    assert check_classes(logits_fn, _npz_with_classes(tmp_path, 10), "test") is None
