"""The run directory's files: atomic writes, JSON without NaN, history round trip, flagfile round trip."""

import json
import math

import numpy as np
import pytest

from tfregimes.base.run_dir import RunDirectory
from tfregimes.base.run_files import json_safe, write_atomically, write_json
from tfregimes.config import run_config as config_lib


def test_write_atomically_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    write_atomically(target, "first")
    write_atomically(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


def test_json_has_no_nan_and_numpy_scalars_become_numbers(tmp_path):
    assert json_safe({"a": float("nan"), "b": [np.float32(1.5), float("inf")], "c": np.int64(3)}) == \
        {"a": None, "b": [1.5, None], "c": 3}
    write_json(tmp_path / "m.json", {"loss": float("nan"), "acc": np.float64(0.25)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": None, "acc": 0.25}


def test_history_round_trip_keeps_types_and_columns_added_later(tmp_path):
    run = RunDirectory(tmp_path)
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_loss": 0.75}]
    run.write_history(rows)
    assert run.read_history() == [{"epoch": 1, "loss": 0.5, "val_loss": None},
                                  {"epoch": 2, "loss": 0.25, "val_loss": 0.75}]
    assert run.history_path.read_text().splitlines()[0] == "epoch,loss,val_loss"


def test_progress_absent_until_written(tmp_path):
    run = RunDirectory(tmp_path)
    assert run.read_progress() is None
    run.write_progress(epochs_done=3, checkpoint="epoch-0003.weights.h5")
    assert run.read_progress() == {"epochs_done": 3, "checkpoint": "epoch-0003.weights.h5"}
    assert run.checkpoint_path(3).name == "epoch-0003.weights.h5"


def test_flagfile_round_trip_of_every_field():
    config = config_lib.RunConfig(hidden_sizes=(64, 32), lr_boundaries=(1.5, 3.0), nesterov=True,
                                  learning_rate=0.1 + 0.2, model_dir="runs/x")
    values = config_lib.parse_flagfile_values(config_lib.to_flagfile(config, ["python", "-m", "tfregimes.train"]))
    assert set(values) == set(config_lib.field_names()) - {"model_dir"}  # model_dir is a comment
    assert values["hidden_sizes"] == "64,32" and values["lr_boundaries"] == "1.5,3.0"
    assert values["nesterov"] == "true"
    assert float(values["learning_rate"]) == config.learning_rate  # repr keeps every digit
    assert math.isclose(float(values["learning_rate"]), 0.30000000000000004, rel_tol=0, abs_tol=0)


@pytest.mark.parametrize("value,text", [(True, "true"), (False, "false"), ((1, 2), "1,2"), (0.5, "0.5"), ("x", "x")])
def test_format_flag_value(value, text):
    assert config_lib.format_flag_value(value) == text
