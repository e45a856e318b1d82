"""Training-time diagnostics through the trainer and its flags."""

import json

import pytest
from absl import flags
from helpers import tiny_config

from tfregimes.cli import train_flag_rules, train_flags
from tfregimes.training import train_and_evaluate


def test_every_diagnostic_lands_in_the_history_of_a_run(tmp_path):
    result = train_and_evaluate(tiny_config(
        tmp_path / "run", epochs=2, lr_boundaries=(1.0,), momentum=0.9,
        diagnostics=("angular", "elr", "momentum", "margins"), margin_samples=64))
    history = result.run_dir.read_history()
    for column in ("angular_update", "weight_norm", "effective_lr", "effective_lr_per_epoch", "tuning_factor",
                   "margin_q1", "margin_median", "margin_q3", "margin_mean"):
        assert all(row[column] is not None for row in history), column
    # One probe batch is more than 1 % of an epoch here: the scale is measured at the last epoch only, the
    # snapshots for the alignment at every epoch.
    assert [row["momentum_scale"] is not None for row in history] == [False, True]
    alignment = json.loads((result.run_dir.root / "diagnostics" / "momentum_alignment.json").read_text())
    assert [record["epoch"] for record in alignment] == [1, 2]
    # Seed 002 eq. 9 against independent numbers: ‖x‖ of the exported final weights, and η of the last epoch from
    # the schedule's closed form (0.05, ×0.1 at the boundary after epoch 1).
    import keras
    import numpy as np
    last = history[-1]
    weights = keras.models.load_model(result.run_dir.keras_model_path).trainable_weights
    norm = np.sqrt(sum(np.sum(np.square(w.numpy().astype(np.float64))) for w in weights))
    assert last["weight_norm"] == pytest.approx(norm, rel=1e-5)
    assert last["effective_lr"] == pytest.approx(0.005 / norm ** 2, rel=1e-5)
    assert 0 < last["angular_update"] < 3.15


def test_momentum_alignment_keeps_every_epoch_of_both_phases(tmp_path):
    # A phase switch starts a fresh optimizer whose step count restarts: snapshots keyed by step would let phase
    # 2's replace phase 1's. Each epoch's snapshot stays, and s_t is measured against the run's final weights.
    config = tiny_config(tmp_path / "run", epochs=4, lr_boundaries=(1.0,), transition_epoch=2,
                         phase2_learning_rate=0.01, diagnostics=("momentum",))
    train_and_evaluate(config)
    alignment = json.loads((tmp_path / "run" / "diagnostics" / "momentum_alignment.json").read_text())
    assert [record["epoch"] for record in alignment] == [1, 2, 3, 4]
    assert alignment[-1]["distance_to_final"] == 0.0 and alignment[0]["distance_to_final"] > 0.0
    snapshots = sorted(p.name for p in (tmp_path / "run" / "diagnostics" / "momentum_snapshots").glob("*.npz"))
    assert snapshots == [f"epoch-{epoch:06d}.npz" for epoch in (1, 2, 3, 4)]


def test_unknown_diagnostic_and_margin_or_probe_flags_without_their_diagnostic_fail():
    with pytest.raises(flags.IllegalFlagValueError, match="--diagnostics=\\['sharpness'\\]: must be"):
        flags.FLAGS(["prog", "--diagnostics=sharpness"])
    flags.FLAGS.unparse_flags()
    for flag, needed in (("--margin_samples=10", "margins"), ("--momentum_probe_examples=64", "momentum")):
        flags.FLAGS(["prog", "--diagnostics=angular", flag])
        try:
            with pytest.raises(flags.ValidationError,
                               match=f"{flag.split('=')[0]} only applies with --diagnostics={needed}"):
                train_flag_rules.check_flag_combinations(train_flags.config_from_flags())
        finally:
            flags.FLAGS.unparse_flags()


def test_evaluate_reports_margins_of_the_final_model(tiny_run, tmp_path):
    import json

    import numpy as np
    from helpers import run_cli

    from tfregimes.data import load_dataset
    from tfregimes.training.scoring import load_keras_model
    _, result = tiny_run
    output, saved = tmp_path / "eval.json", tmp_path / "margins.npy"
    completed = run_cli("tfregimes.evaluate", f"--model={result.run_dir.export_dir}", "--dataset=synthetic",
                        "--metrics=margins", "--metrics_samples=0", f"--save_margins={saved}", f"--output={output}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    margins = json.loads(output.read_text())["margins"]
    values = np.load(saved)
    x, y = load_dataset("synthetic").arrays("train")
    # Independently, in NumPy: the MLP (dense 32, ReLU, dense) is linear around each x, so ∇_x f_k = W1 · (mask ⊙
    # W2[:, k]); d = (f_y − f_c) / ‖∇_x f_y − ∇_x f_c‖₂ with c the highest other logit, divided by √(tr Cov x).
    w1, b1, w2, b2 = (w.astype(np.float64) for w in load_keras_model(result.run_dir.export_dir).get_weights())
    flat = x.reshape(len(x), -1).astype(np.float64)
    pre = flat @ w1 + b1
    logits = np.maximum(pre, 0) @ w2 + b2
    rows = np.arange(len(x))
    others = logits.copy()
    others[rows, y] = -np.inf
    c = others.argmax(axis=1)
    direction = w2[:, y] - w2[:, c]  # [hidden, N]
    gradient_norms = np.linalg.norm(w1 @ ((pre > 0).T * direction), axis=0)
    raw = (logits[rows, y] - logits[rows, c]) / gradient_norms
    total_variation = np.mean(np.sum(flat ** 2, axis=1)) - np.sum(flat.mean(axis=0) ** 2)
    np.testing.assert_allclose(values, raw / np.sqrt(total_variation), rtol=1e-4, atol=1e-7)
    q1, q3 = np.quantile(values, [0.25, 0.75])
    assert margins["q1"] == pytest.approx(q1) and margins["q3"] == pytest.approx(q3)
    assert margins["value"] == pytest.approx(values[(values >= q1) & (values <= q3)].mean())
    assert margins["negative_fraction"] == pytest.approx(float(np.mean(values < 0)))


@pytest.mark.parametrize("regularizer,options", [
    ("fisher", dict(fisher_subbatches=4, fisher_beta=10.0, regularizer_start_epoch=1)),
    ("proximal", dict(proximal_steps=2)),
    ("sam", dict(sam_rho=0.05, sam_subbatches=2)),
])
def test_each_regularizer_trains_from_the_config(tmp_path, regularizer, options):
    result = train_and_evaluate(tiny_config(tmp_path / "run", epochs=2, lr_boundaries=(1.0,),
                                            regularizer=regularizer, **options))
    history = result.run_dir.read_history()
    assert not result.metrics["diverged"] and history[-1]["loss"] < history[0]["loss"]
    assert f"--regularizer={regularizer}" in result.run_dir.flags_path.read_text().splitlines()
    extra = {"fisher": "fisher_penalty", "proximal": "proximal_distance", "sam": "sam_perturbed_loss"}[regularizer]
    assert history[-1][extra] > 0  # The regime's own quantity, logged per epoch.
    if regularizer == "fisher":  # The window starts at epoch 1: off in epoch 0, R_α is 0 there.
        assert history[0]["fisher_penalty"] == 0.0


def test_evaluate_writes_its_numbers_to_tensorboard_too(tiny_run, tmp_path):
    import tensorflow as tf
    from helpers import run_cli
    _, result = tiny_run
    log_dir = tmp_path / "tb"
    completed = run_cli("tfregimes.evaluate", f"--model={result.run_dir.export_dir}", "--dataset=synthetic",
                        "--metrics=margins,robustness", "--metrics_samples=64", f"--tensorboard_dir={log_dir}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    values = {}
    for event_file in log_dir.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                values[value.tag] = float(tf.make_ndarray(value.tensor))
    assert set(values) == {"test/loss", "test/accuracy", "train/margins", "train/robustness"}
    assert values["test/accuracy"] == pytest.approx(result.metrics["test_accuracy"])
