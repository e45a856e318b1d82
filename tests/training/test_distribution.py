"""tf.distribute and precision: MirroredStrategy on 2 logical CPU devices matches one device; mixed precision."""

import json
import sys

import keras
import numpy as np
import pytest
from helpers import localhost_workers, run_cli, tiny_config

from tfregimes.training import train_and_evaluate

# An MLP has no batch norm, whose per-replica statistics would legitimately differ from one device's.
SMOKE = ["--flagfile=flags/smoke.cfg", "--epochs=2", "--verbose=0"]


def exported_weights(run_dir):
    return keras.saving.load_model(str(run_dir / "export" / "model.keras"), compile=False).get_weights()


def assert_same_weights(expected, actual):
    assert len(expected) == len(actual) and any(np.any(w != 0) for w in expected)
    for a, b in zip(expected, actual):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def one_device_weights(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("one_device") / "run"
    completed = run_cli("tfregimes.train", *SMOKE, "--strategy=default", f"--model_dir={run_dir}")
    assert completed.returncode == 0, completed.stderr[-3000:]
    return exported_weights(run_dir)


def test_mirrored_on_two_cpu_devices_gives_the_weights_of_one_device(one_device_weights, tmp_path):
    completed = run_cli("tfregimes.train", *SMOKE, "--strategy=mirrored", "--num_cpu_devices=2",
                        f"--model_dir={tmp_path / 'run'}")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert_same_weights(one_device_weights, exported_weights(tmp_path / "run"))


@pytest.mark.slow(15)
def test_two_localhost_workers_train_checkpoint_and_match_one_device(one_device_weights, tmp_path):
    run_dir = tmp_path / "run"
    workers = localhost_workers(lambda index: [sys.executable, "-m", "tfregimes.train", *SMOKE,
                                               "--strategy=multi_worker", f"--model_dir={run_dir}"])
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    assert "Run finished" in outputs[0][0]
    assert json.loads((run_dir / "progress.json").read_text())["epochs_done"] == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch-0001.weights.h5",
                                                                           "epoch-0002.weights.h5"]
    assert_same_weights(one_device_weights, exported_weights(run_dir))


def test_multi_worker_without_tf_config_fails_naming_the_flag(tmp_path):
    completed = run_cli("tfregimes.train", *SMOKE, "--strategy=multi_worker", f"--model_dir={tmp_path / 'run'}")
    assert completed.returncode == 1
    assert "--strategy=multi_worker: multi_worker needs the cluster in the TF_CONFIG" in completed.stderr


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_and_restores_the_float32_policy(tmp_path, precision):
    result = train_and_evaluate(tiny_config(tmp_path / "run", precision=precision, epochs=2, lr_boundaries=(1.0,)))
    history = result.run_dir.read_history()
    assert not result.metrics["diverged"] and history[-1]["loss"] < history[0]["loss"]
    assert result.metrics["test_accuracy"] > 0.3
    assert keras.config.dtype_policy().name == "float32"


def test_gradient_accumulation_over_two_micro_batches_equals_the_full_batch(tmp_path):
    common = dict(epochs=2, lr_boundaries=(1.0,), weight_decay=1e-3)
    full = train_and_evaluate(tiny_config(tmp_path / "full", **common))
    accumulated = train_and_evaluate(tiny_config(tmp_path / "accumulated", grad_accum_steps=2, **common))
    weights = [keras.saving.load_model(str(run.run_dir.keras_model_path), compile=False).get_weights()
               for run in (full, accumulated)]
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    rates = [[row["learning_rate"] for row in run.run_dir.read_history()] for run in (full, accumulated)]
    assert rates[0] == rates[1] == pytest.approx([0.05, 0.005])


def test_lars_warmup_linear_scaling_and_mirrored_compose(tmp_path):
    """The regimes compose: LARS + linear scaling + warm-up + a step schedule, on 2 mirrored logical devices."""
    run_dir = tmp_path / "run"
    completed = run_cli("tfregimes.train", *SMOKE, "--epochs=3", "--optimizer=lars", "--learning_rate=2.0",
                        "--reference_batch_size=16", "--warmup_epochs=1", "--lr_boundaries=2",
                        "--strategy=mirrored", "--num_cpu_devices=2", f"--model_dir={run_dir}")
    assert completed.returncode == 0, completed.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["diverged"] is False and metrics["epochs_run"] == 3
    history = (run_dir / "history.csv").read_text().splitlines()
    rates = [float(line.split(",")[history[0].split(",").index("learning_rate")]) for line in history[1:]]
    # Peak 2.0 x 32/16 = 4.0 after one warm-up epoch from 2.0; x0.1 at epoch 2.
    steps = 512 // 32
    assert rates == pytest.approx([2.0 + 2.0 * (steps - 1) / steps, 4.0, 0.4])
