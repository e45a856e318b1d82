"""A run records the fingerprint of its data and refuses to report or resume on data that changed under the same
flags (issue 24, item 1); a default run name is never another run's (item 3); a run that fails before it starts
leaves no directory (item 5)."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from helpers import REPO, run_cli, tiny_config

from tfregimes.base.run_dir import RunDirectory
from tfregimes.training import RunDataMismatch, train_and_evaluate


def _write_npz(path, seed):
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.uniform(size=(64, 4)).astype(np.float32), y_train=np.arange(64) % 4,
             x_test=rng.uniform(size=(16, 4)).astype(np.float32), y_test=np.arange(16) % 4)


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory):
    """(config, result, npz path) of a finished 2-epoch run on a small npz file."""
    root = tmp_path_factory.mktemp("npz_run")
    path = root / "data.npz"
    _write_npz(path, seed=0)
    config = tiny_config(root / "run", dataset=f"npz:{path}", epochs=2, lr_boundaries=(1.0,))
    return config, train_and_evaluate(config), path


def test_a_run_records_the_size_and_sha256_of_its_data(npz_run):
    config, result, path = npz_run
    recorded = json.loads(result.run_dir.data_path.read_text())
    content = path.read_bytes()
    assert recorded["files"] == {"data.npz": {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}}
    assert recorded["dataset"] == config.dataset
    assert json.loads(result.run_dir.metrics_path.read_text())["data"] == recorded


def _copy_run(npz_run, tmp_path):
    """A copy of the finished run and of its data file, the copy's flags and records naming the copied file."""
    config, result, path = npz_run
    run, copy = tmp_path / "run", tmp_path / "data.npz"
    shutil.copytree(result.run_dir.root, run)
    copy.write_bytes(path.read_bytes())
    for name in ("flags.cfg", "data.json", "metrics.json"):
        (run / name).write_text((run / name).read_text().replace(str(path), str(copy)))
    return config.replace(dataset=f"npz:{copy}", model_dir=str(run)), run, copy


def test_a_finished_run_on_rewritten_data_is_refused_not_reported(npz_run, tmp_path):
    config, run, copy = _copy_run(npz_run, tmp_path)
    assert train_and_evaluate(config).already_complete  # The same content elsewhere is the same data.
    _write_npz(copy, seed=1)
    with pytest.raises(RunDataMismatch, match=rf"{run} holds a run trained on other data than npz:{copy} holds now "
                                              r"\(files/data.npz/sha256: recorded [0-9a-f]{12}…, now [0-9a-f]{12}…\)"):
        train_and_evaluate(config)
    completed = run_cli("tfregimes.train", f"--flagfile={run / 'flags.cfg'}", f"--model_dir={run}")
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {run} holds a run trained on other data"), lines


def test_an_interrupted_run_does_not_resume_on_other_data(npz_run, tmp_path):
    config, run, copy = _copy_run(npz_run, tmp_path)
    (run / "metrics.json").unlink()  # As if killed after its last epoch: a resume would train on.
    progress = (run / "progress.json").read_text()
    _write_npz(copy, seed=1)
    with pytest.raises(RunDataMismatch, match="files/data.npz/sha256"):
        train_and_evaluate(config)
    assert (run / "progress.json").read_text() == progress and not (run / "metrics.json").exists()


def test_a_default_name_taken_by_another_run_in_the_same_second_gets_a_suffix(tmp_path, monkeypatch):
    """Before: the run checked the other run's fresh directory and stopped with 'holds a run started with other
    flags' (or reported its metrics as its own)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(RunDirectory, "new_default",
                        classmethod(lambda cls, dataset, model, base="runs": cls(f"{base}/same_second")))
    other = tmp_path / "runs" / "same_second"
    other.mkdir(parents=True)
    (other / "flags.cfg").write_text("--learning_rate=0.5\n--epochs=7\n")
    (other / "metrics.json").write_text('{"test_accuracy": 0.5}')
    result = train_and_evaluate(tiny_config("", epochs=2, lr_boundaries=(1.0,)))
    assert not result.already_complete and result.run_dir.root.resolve() == other.with_name("same_second-2")
    assert (result.run_dir.root / "metrics.json").exists()


class _OutOfMemory(MemoryError):
    pass


@pytest.mark.parametrize("where", ["default", "new_model_dir", "existing_model_dir"])
def test_a_run_that_fails_before_it_starts_leaves_no_directory_it_created(tmp_path, monkeypatch, where):
    from tfregimes.training import trainer
    monkeypatch.chdir(tmp_path)

    def out_of_memory(*args, **kwargs):
        raise _OutOfMemory("building a 10**9-class output layer")

    monkeypatch.setattr(trainer, "build_network_and_wrapper", out_of_memory)
    model_dir = {"default": "", "new_model_dir": "fresh", "existing_model_dir": "mine"}[where]
    if where == "existing_model_dir":
        (tmp_path / "mine").mkdir()
    with pytest.raises(_OutOfMemory):
        train_and_evaluate(tiny_config(model_dir))
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    # runs/ itself may stay (it holds every default-named run), and a directory the user made stays (with the
    # released lock file); a directory the run made does not.
    assert left == {"default": ["runs"], "new_model_dir": [], "existing_model_dir": ["mine", "mine/.lock"]}[where]


def test_evaluate_records_the_data_it_evaluated_and_results_show_the_digest(npz_run):
    from tfregimes.evaluation import EvaluationConfig, evaluate_model
    from tfregimes.results import collect
    config, result, _ = npz_run
    recorded = json.loads(result.run_dir.data_path.read_text())
    evaluation = evaluate_model(EvaluationConfig(model=str(result.run_dir.export_dir), dataset=config.dataset))
    assert evaluation["data"] == recorded
    assert collect([result.run_dir.root])["data"].tolist() == [recorded["digest"]]


def test_evaluate_refuses_a_runs_export_on_other_data_unless_allowed(npz_run, tmp_path, capsys):
    from tfregimes.evaluation import EvaluationConfig, evaluate_model
    config, run, copy = _copy_run(npz_run, tmp_path)
    same = evaluate_model(EvaluationConfig(model=str(run / "export"), dataset=config.dataset))  # Same content.
    _write_npz(copy, seed=1)
    refused = (rf"^{run} was trained on other data \(npz:{copy}\) than npz:{copy} holds now \(files/data.npz/sha256: "
               r"recorded [0-9a-f]{12}…, now [0-9a-f]{12}…\); .* pass --allow_other_data")
    for model in ("export", "export/model.keras", "export/saved_model"):
        with pytest.raises(RunDataMismatch, match=refused):
            evaluate_model(EvaluationConfig(model=str(run / model), dataset=config.dataset))
    capsys.readouterr()
    allowed = evaluate_model(EvaluationConfig(model=str(run / "export"), dataset=config.dataset, allow_other_data=True))
    assert allowed["data"]["digest"] != same["data"]["digest"] and allowed["examples"] == same["examples"]
    assert capsys.readouterr().err.startswith(f"note: {run} was trained on other data")
    completed = run_cli("tfregimes.evaluate", f"--model={run / 'export'}", f"--dataset={config.dataset}")
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {run} was trained on "
                                                                                  "other data"), completed.stderr


def test_the_run_files_page_names_the_data_json_file():
    assert "| `data.json` |" in (REPO / "docs" / "reliability.md").read_text()
