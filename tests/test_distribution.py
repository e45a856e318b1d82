"""tf.distribute and precision: MirroredStrategy on 2 logical CPU devices matches one device; mixed precision."""

import keras
import numpy as np
import pytest

from conftest import run_cli, tiny_config
from tfregimes.training import train_and_evaluate

# An MLP has no batch norm, whose per-replica statistics would legitimately differ from one device's.
SMOKE = ["--flagfile=flags/smoke.cfg", "--epochs=2", "--verbose=0"]


def test_mirrored_on_two_cpu_devices_gives_the_weights_of_one_device(tmp_path):
    runs = {}
    for name, extra in {"one": ["--strategy=default"],
                        "mirrored": ["--strategy=mirrored", "--num_cpu_devices=2"]}.items():
        completed = run_cli("tfregimes.train", *SMOKE, *extra, "--weight_decay=1e-3",
                            f"--model_dir={tmp_path / name}")
        assert completed.returncode == 0, completed.stderr[-3000:]
        runs[name] = keras.saving.load_model(str(tmp_path / name / "export" / "model.keras"), compile=False)
    one, mirrored = (runs[name].get_weights() for name in ("one", "mirrored"))
    assert len(one) == len(mirrored) and any(np.any(w != 0) for w in one)
    for a, b in zip(one, mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


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
