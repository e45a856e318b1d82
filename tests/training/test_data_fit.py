"""Settings that cannot fit the data's size are refused before any data loads or any sweep point starts, naming the
flag, the point and the training-set size (tfregimes.training.data_fit)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_cli, sweep_env, tiny_config

from tfregimes.sweep import SweepSpecError, make_spec, run_sweep
from tfregimes.training import RunConfigError, train_and_evaluate
from tfregimes.training import trainer as trainer_lib


@pytest.fixture
def npz_37(tmp_path):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.random((37, 8, 8, 3), np.float32), y_train=np.arange(37) % 10,
             x_test=rng.random((5, 8, 8, 3), np.float32), y_test=np.arange(5))
    return f"npz:{path}"


@pytest.mark.parametrize("changes, message", [
    (dict(batch_size=64), r"--batch_size=64 exceeds the 37 training examples of npz:.*d\.npz; "),
    (dict(train_subset=50), r"--train_subset=50 exceeds the 37 training examples of npz:.*d\.npz; use at most 37"),
])
def test_train_refuses_settings_beyond_the_data_before_loading_it(npz_37, tmp_path, monkeypatch, changes, message):
    monkeypatch.setattr(trainer_lib, "load_dataset", lambda *a, **k: pytest.fail("the data was loaded"))
    config = tiny_config(tmp_path / "run", dataset=npz_37, **changes)
    with pytest.raises(RunConfigError, match=message):
        train_and_evaluate(config)
    assert not (tmp_path / "run").exists()


def test_run_sweep_refuses_a_point_beyond_the_data_before_writing(tmp_path):
    spec = make_spec({"dataset": "digits", "model": "mlp", "epochs": 1}, grid=["train_subset=100,2000"])
    with pytest.raises(SweepSpecError, match=r"^point train_subset-2000: --train_subset=2000 exceeds the 1437 "
                                             r"training examples of digits; use at most 1437"):
        run_sweep(spec, tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_the_sweep_cli_refuses_a_grid_point_beyond_the_data_in_one_line(tmp_path):
    result = run_cli("tfregimes.sweep", "--dataset=digits", "--model=mlp", "--epochs=1",
                     "--grid=batch_size=32,100000", f"--sweep_dir={tmp_path / 'sweep'}", env=sweep_env())
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "error: point batch_size-100000: --batch_size=100000 exceeds the 1437 training examples of digits; training "
        "drops the last partial batch, so no step would run. Use --batch_size of at most 1437."]
    assert not (tmp_path / "sweep").exists()


def test_a_source_that_cannot_tell_its_size_is_checked_once_loaded(tmp_path, monkeypatch):
    from tfregimes.training import data_fit
    monkeypatch.setattr(data_fit, "training_set_size", lambda *a, **k: None)  # As an unprepared TFDS set.
    with pytest.raises(RunConfigError, match=r"--batch_size=1024 exceeds the 512 training examples of synthetic"):
        train_and_evaluate(tiny_config(tmp_path / "run", batch_size=1024))
    assert not (tmp_path / "run").exists()
