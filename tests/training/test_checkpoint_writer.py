"""Checkpoints written in the background (issue 23, item 8): the file is the one `save_weights` writes, progress.json
never names a checkpoint that is not complete, and a kill while the files of an epoch are being written resumes to
the uninterrupted run's numbers."""

import shutil
import threading
import time

import h5py
import keras
import numpy as np
import pytest
from helpers import tiny_config

from tfregimes.base import keras_private
from tfregimes.base.run_dir import RunDirectory, file_sha256
from tfregimes.training import checkpoint_writer, train_and_evaluate
from tfregimes.training import recording as recording_lib


def _h5_contents(path):
    """{name: (attributes, data or None)} of every group and dataset of an HDF5 file."""
    contents = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: contents.__setitem__(
            name, (dict(item.attrs), item[()] if isinstance(item, h5py.Dataset) else None)))
    return contents


def _assert_same_file(ours, keras_file):
    ours, theirs = _h5_contents(ours), _h5_contents(keras_file)
    assert sorted(ours) == sorted(theirs)
    for name, (attributes, data) in theirs.items():
        assert ours[name][0] == attributes, name
        if data is not None:
            np.testing.assert_array_equal(ours[name][1], data, err_msg=name)


def test_a_snapshot_is_written_as_save_weights_writes_it_and_keeps_its_epochs_values(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.default_rng(0).normal(size=(64, 4)).astype("float32"), np.arange(64) % 3
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    snapshot = checkpoint_writer.WeightsSnapshot(model)
    first = snapshot.take()
    model.save_weights(str(tmp_path / "keras-1.weights.h5"))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # Changes every variable the snapshot copied.
    second = snapshot.take()  # The walk of the first take, reused.
    model.save_weights(str(tmp_path / "keras-2.weights.h5"))
    checkpoint_writer.write_checkpoint(tmp_path / "ours-1.weights.h5", first)
    checkpoint_writer.write_checkpoint(tmp_path / "ours-2.weights.h5", second)
    _assert_same_file(tmp_path / "ours-1.weights.h5", tmp_path / "keras-1.weights.h5")
    _assert_same_file(tmp_path / "ours-2.weights.h5", tmp_path / "keras-2.weights.h5")
    optimizer_entries = [entries for path, _, entries in second if path == "optimizer"]
    assert optimizer_entries and len(optimizer_entries[0]) == len(model.optimizer.variables)  # momentums included
    assert sorted(path.name for path in tmp_path.iterdir()) == [  # no temporary file left beside them
        "keras-1.weights.h5", "keras-2.weights.h5", "ours-1.weights.h5", "ours-2.weights.h5"]


def test_the_layout_walk_fails_loudly_when_keras_changes_its_saving_walk(monkeypatch):
    from keras.src.saving import saving_lib

    def renamed(obj, weights_store, **_):  # a Keras whose walk no longer names its argument `saveable`
        weights_store.make("", None)
    monkeypatch.setattr(saving_lib, "_save_state", renamed)
    with pytest.raises(RuntimeError, match="weights_layout needs updating"):
        keras_private.weights_layout(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))


@pytest.fixture
def slow_writes(monkeypatch):
    """Checkpoint writes that take 1 s, and, at each progress.json, whether the checkpoint it names was complete
    (written and not being written) and matched its checksum."""
    writing = threading.Event()
    seen = []
    write_checkpoint = checkpoint_writer.write_checkpoint

    def slow(path, groups):
        writing.set()
        time.sleep(1.0)
        write_checkpoint(path, groups)
        writing.clear()
    monkeypatch.setattr(checkpoint_writer, "write_checkpoint", slow)
    write_progress = RunDirectory.write_progress

    def checked(run_dir, **entry):
        path = run_dir.checkpoint_dir / entry["checkpoint"]
        seen.append((entry["epochs_done"], not writing.is_set() and path.is_file()
                     and file_sha256(path) == entry.get("sha256")))
        write_progress(run_dir, **entry)
    monkeypatch.setattr(RunDirectory, "write_progress", checked)
    return seen


def test_progress_json_names_only_complete_checkpoints_and_training_does_not_wait_for_them(
        tiny_run, tmp_path, slow_writes, monkeypatch):
    on_epoch_end, waits = recording_lib.EpochRecorder.on_epoch_end, []

    def timed(recorder, epoch, logs=None):
        started = time.perf_counter()
        on_epoch_end(recorder, epoch, logs)
        waits.append(time.perf_counter() - started)
    monkeypatch.setattr(recording_lib.EpochRecorder, "on_epoch_end", timed)
    config, uninterrupted = tiny_run
    result = train_and_evaluate(config.replace(model_dir=str(tmp_path / "run")))
    assert slow_writes == [(1, True), (2, True), (3, True)]
    assert waits[0] < 0.5  # The first epoch's end hands its 1 s write to the background.
    assert result.run_dir.read_progress()["epochs_done"] == 3  # All written before train_and_evaluate returned.
    for key in ("train_loss", "test_loss", "test_accuracy"):
        assert result.metrics[key] == uninterrupted.metrics[key], key


def test_a_kill_while_an_epochs_files_are_written_resumes_to_the_uninterrupted_numbers(tiny_run, tmp_path,
                                                                                        monkeypatch):
    """Two kills, as copies of the run directory: while epoch 2's checkpoint is being written (its temporary file
    there, progress.json at epoch 1), and after epoch 3's checkpoint and history.csv but before its progress.json."""
    config, uninterrupted = tiny_run
    config = config.replace(model_dir=str(tmp_path / "run"))
    kills = {}

    def copy(run_dir, name):
        kills[name] = tmp_path / name
        shutil.copytree(run_dir.root, kills[name], ignore=shutil.ignore_patterns(".lock"))
    write_weights = keras_private.write_weights

    def writing(path, groups):
        write_weights(path, groups)
        if path.startswith(str(tmp_path / "run" / "checkpoints" / ".epoch-0002")):
            copy(RunDirectory(tmp_path / "run"), "while_writing_2")
    monkeypatch.setattr(keras_private, "write_weights", writing)
    write_progress = RunDirectory.write_progress

    def before_progress(run_dir, **entry):
        if entry["epochs_done"] == 3:
            copy(run_dir, "before_progress_3")
        write_progress(run_dir, **entry)
    monkeypatch.setattr(RunDirectory, "write_progress", before_progress)
    train_and_evaluate(config)
    monkeypatch.undo()
    while_writing, before_progress_3 = kills["while_writing_2"], kills["before_progress_3"]
    # The kills are what they say: a temporary file and no epoch-0002 yet; epoch-0003 complete, not yet recorded.
    assert [p.name for p in (while_writing / "checkpoints").iterdir() if p.name.startswith(".epoch-0002")]
    assert not (while_writing / "checkpoints" / "epoch-0002.weights.h5").exists()
    assert (before_progress_3 / "checkpoints" / "epoch-0003.weights.h5").is_file()
    expected_history = [row["loss"] for row in uninterrupted.run_dir.read_history()]
    for root, resumed_from in ((while_writing, 1), (before_progress_3, 2)):
        assert RunDirectory(root).read_progress()["epochs_done"] == resumed_from
        resumed = train_and_evaluate(config.replace(model_dir=str(root)))
        assert resumed.metrics["resumed_from_epoch"] == resumed_from
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert resumed.metrics[key] == uninterrupted.metrics[key], (root.name, key)
        assert [row["loss"] for row in resumed.run_dir.read_history()] == expected_history
        assert not list((root / "checkpoints").glob(".epoch-*"))  # The killed write's temporary file is gone.


def test_a_failed_checkpoint_write_stops_training_with_its_error(tmp_path, monkeypatch):
    def full(path, groups):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoint_writer, "write_checkpoint", full)
    with pytest.raises(OSError, match="No space left on device"):
        train_and_evaluate(tiny_config(tmp_path / "run", epochs=2, lr_boundaries=(1.0,)))
    assert RunDirectory(tmp_path / "run").read_progress() is None


def test_a_kill_between_two_checkpoints_retrains_the_epochs_after_the_older_one_to_the_same_numbers(
        tiny_run, tmp_path, monkeypatch):
    """--checkpoint_every_secs=30 on a clock the test drives: epoch 1 takes 40 s (checkpointed), epoch 2 one second
    (not: 1 s since the last), epoch 3 is the fit's last (checkpointed). A kill after epoch 2 trained leaves
    progress.json, history.csv and the checkpoints of epoch 1; the resume retrains epochs 2 and 3 to the numbers of
    the uninterrupted run (checkpointed every epoch)."""
    config, uninterrupted = tiny_run
    config = config.replace(model_dir=str(tmp_path / "run"), checkpoint_every_secs=30.0)
    now, durations = [0.0], [40.0, 1.0, 1.0]
    monkeypatch.setattr(recording_lib, "training_clock", lambda: now[0])
    on_epoch_end = recording_lib.EpochRecorder.on_epoch_end
    recorded = []

    def timed(recorder, epoch, logs=None):
        now[0] += durations[epoch]
        if epoch == 2:  # Epoch 2 is trained and in TensorBoard: the kill, with the files of epoch 1 complete.
            recorder.wait()
            shutil.copytree(recorder.run_dir.root, tmp_path / "killed", ignore=shutil.ignore_patterns(".lock"))
        on_epoch_end(recorder, epoch, logs)
    monkeypatch.setattr(recording_lib.EpochRecorder, "on_epoch_end", timed)
    write_progress = RunDirectory.write_progress

    def recording(run_dir, **entry):
        recorded.append(entry["epochs_done"])
        write_progress(run_dir, **entry)
    monkeypatch.setattr(RunDirectory, "write_progress", recording)
    policy = train_and_evaluate(config)
    monkeypatch.undo()
    assert recorded == [1, 3]  # Due after 30 s, and at the fit's last epoch.
    expected_history = [row["loss"] for row in uninterrupted.run_dir.read_history()]
    assert [row["loss"] for row in policy.run_dir.read_history()] == expected_history
    killed = RunDirectory(tmp_path / "killed")
    assert killed.read_progress()["epochs_done"] == 1 and len(killed.read_history()) == 1
    assert [p.name for p in killed.checkpoint_dir.iterdir()] == ["epoch-0001.weights.h5"]
    resumed = train_and_evaluate(config.replace(model_dir=str(killed.root)))
    assert resumed.metrics["resumed_from_epoch"] == 1
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert resumed.metrics[key] == uninterrupted.metrics[key] == policy.metrics[key], key
    assert [row["loss"] for row in resumed.run_dir.read_history()] == expected_history
