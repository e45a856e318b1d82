"""A damaged latest checkpoint: the resume falls back to the newest checkpoint that verifies and loads, and says
so; checkpoints are verified against the checksum progress.json records (issue 12, item 4)."""

import json
import shutil

import pytest

from tfregimes.training import RunConfigError, train_and_evaluate


def _unfinished_copy(tiny_run, tmp_path):
    """The tiny run's directory as a kill right after its last epoch would leave it (no metrics, no export)."""
    config, result = tiny_run
    root = tmp_path / "run"
    shutil.copytree(result.run_dir.root, root, ignore=shutil.ignore_patterns(".lock"))
    (root / "metrics.json").unlink()
    shutil.rmtree(root / "export")
    return config.replace(model_dir=str(root)), root


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tiny_run, tmp_path, capsys, damage):
    config, root = _unfinished_copy(tiny_run, tmp_path)
    progress = json.loads((root / "progress.json").read_text())
    assert progress["epochs_done"] == 3 and len(progress["sha256"]) == 64
    assert [entry["epochs_done"] for entry in progress["earlier"]] == [2]
    damage(root / "checkpoints" / "epoch-0003.weights.h5")
    resumed = train_and_evaluate(config)
    output = capsys.readouterr().out
    assert "checkpoints/epoch-0003.weights.h5 is damaged" in output
    assert "resuming from epoch-0002.weights.h5 (after epoch 2) instead" in output
    assert resumed.metrics["resumed_from_epoch"] == 2
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert resumed.metrics[key] == tiny_run[1].metrics[key], key  # Epoch 3 retrained: the same numbers.


def test_no_loadable_checkpoint_is_one_clear_error(tiny_run, tmp_path):
    config, root = _unfinished_copy(tiny_run, tmp_path)
    for checkpoint in (root / "checkpoints").iterdir():
        _truncate(checkpoint)
    with pytest.raises(RunConfigError, match=r"no checkpoint of .* verifies or loads .*epoch-0003.weights.h5 is "
                                              r"damaged .*epoch-0002.weights.h5 is damaged"):
        train_and_evaluate(config)
