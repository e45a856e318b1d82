"""Tiny real runs for the results and report tests: a sweep directory as `python -m tfregimes.sweep` lays it out
(a hand-written sweep.json beside ordinary run directories) and one run with every training diagnostic.

Evaluations are computed in-process with `tfregimes.evaluation.evaluate_model`, which `python -m tfregimes.evaluate`
calls, and written as it writes them (the CLI would cost a TensorFlow start-up per run).
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import tiny_config

# (name, overrides): batch size × seed, and one learning rate that diverges at once.
SWEEP_POINTS = [
    ("batch_size=16,seed=0", {"batch_size": "16", "seed": "0"}),
    ("batch_size=16,seed=1", {"batch_size": "16", "seed": "1"}),
    ("batch_size=64,seed=0", {"batch_size": "64", "seed": "0"}),
    ("batch_size=64,seed=1", {"batch_size": "64", "seed": "1"}),
    ("batch_size=16,learning_rate=1e9,seed=0", {"batch_size": "16", "seed": "0", "learning_rate": "1e9"}),
]
SWEEP_COMMAND = ["python", "-m", "tfregimes.sweep", "--flagfile=flags/smoke.cfg", "--grid=batch_size=16,64",
                 "--seeds=0,1", "--sweep_dir=SWEEP"]


def evaluate_run(run_dir: Path, dataset: str, metrics=("sharpness", "margins")) -> None:
    """RUN/evaluation.json as `python -m tfregimes.evaluate --model=RUN/export --metrics=...` writes it."""
    from tfregimes.base.run_dir import write_json
    from tfregimes.diagnostics.adapters import MetricSettings
    from tfregimes.evaluation import EvaluationConfig, evaluate_model
    settings = MetricSettings(sample_size=256, sharpness_spaces=("full",), sharpness_epsilons=(1e-3,),
                              sharpness_maxiter=2)
    config = EvaluationConfig(model=str(run_dir / "export"), dataset=dataset, metrics=metrics, settings=settings)
    write_json(run_dir / "evaluation.json", evaluate_model(config))


def make_sweep(sweep_dir: Path) -> Path:
    from tfregimes.training import train_and_evaluate
    points = []
    for name, overrides in SWEEP_POINTS:
        run_dir = sweep_dir / name
        changes = {k: (float(v) if k == "learning_rate" else int(v)) for k, v in overrides.items()}
        # Coupled weight decay makes the η = 1e9 point overflow to a non-finite loss (without it the loss of the
        # exploding logits stays finite): that point diverges.
        config = tiny_config(run_dir, epochs=2, lr_boundaries=(1.0,), weight_decay=5e-4, **changes)
        result = train_and_evaluate(config,
                                    command=["python", "-m", "tfregimes.train", "--flagfile=flags/smoke.cfg",
                                             *(f"--{k}={v}" for k, v in overrides.items())])
        diverged = result.metrics["diverged"]
        if not diverged:
            evaluate_run(run_dir, "synthetic")
        points.append({"name": name, "run_dir": name, "overrides": overrides,
                       "state": "diverged" if diverged else "done", "log": f"{name}/train.log", "error": None,
                       "evaluation": None if diverged else f"{name}/evaluation.json"})
    spec = {"grid": {"batch_size": ["16", "64"]}, "seeds": [0, 1], "flagfile": "flags/smoke.cfg"}
    (sweep_dir / "sweep.json").write_text(json.dumps({"spec": spec, "command": SWEEP_COMMAND, "points": points},
                                                     indent=1))
    return sweep_dir


def make_diagnostics_run(run_dir: Path) -> Path:
    """Two phases (the switch after epoch 2) and every training diagnostic, then an evaluation."""
    from tfregimes.training import train_and_evaluate
    config = tiny_config(run_dir, epochs=4, lr_boundaries=(1.0,), transition_epoch=2, phase2_learning_rate=0.01,
                         hidden_sizes=(32, 16),  # three layers, so that their median is not their mean
                         diagnostics=("angular", "elr", "momentum", "margins"), margin_samples=128)
    train_and_evaluate(config, command=["python", "-m", "tfregimes.train", "--flagfile=flags/smoke.cfg",
                                        "--diagnostics=angular,elr,momentum,margins"])
    evaluate_run(run_dir, "synthetic")
    return run_dir


def make_explore_run(run_dir: Path) -> Path:
    """--lr_schedule=explore with a tolerance every epoch meets: flat after epoch 2, decay after epoch 3."""
    from tfregimes.training import train_and_evaluate
    config = tiny_config(run_dir, epochs=4, lr_schedule="explore", lr_boundaries=(), flat_window=1,
                         flat_tolerance=10.0, extra_exploration_epochs=1, decay_interval_epochs=1.0)
    train_and_evaluate(config)
    return run_dir


# (name, overrides, test_accuracy) of a fabricated sweep: two seeds at each batch size.
FABRICATED_POINTS = [
    ("batch_size=16,seed=0", {"batch_size": "16", "seed": "0"}, 0.5),
    ("batch_size=16,seed=1", {"batch_size": "16", "seed": "1"}, 0.7),
    ("batch_size=64,seed=0", {"batch_size": "64", "seed": "0"}, 0.6),
    ("batch_size=64,seed=1", {"batch_size": "64", "seed": "1"}, 0.9),
]


def make_fabricated_sweep(sweep_dir: Path) -> Path:
    """A sweep directory written by hand, no training: each point's flags.cfg (`to_flagfile`), a metrics.json whose
    test accuracy FABRICATED_POINTS gives (train accuracy 1.0, losses 0.1 and 1 − accuracy) and sweep.json."""
    from tfregimes.base.run_files import write_atomically, write_json
    from tfregimes.config.run_config import RunConfig, to_flagfile
    points = []
    for name, overrides, accuracy in FABRICATED_POINTS:
        run_dir = sweep_dir / name
        config = RunConfig(dataset="synthetic", epochs=2, **{k: int(v) for k, v in overrides.items()})
        write_atomically(run_dir / "flags.cfg", to_flagfile(config, ["python", "-m", "tfregimes.train", name]))
        write_json(run_dir / "metrics.json", {"train_loss": 0.1, "train_accuracy": 1.0, "test_loss": 1 - accuracy,
                                              "test_accuracy": accuracy, "epochs_run": 2, "diverged": False})
        points.append({"name": name, "run_dir": name, "overrides": overrides, "state": "done",
                       "log": f"{name}/sweep.log", "error": None, "evaluation": None})
    spec = {"grid": {"batch_size": ["16", "64"]}, "seeds": [0, 1], "flagfile": "flags/smoke.cfg"}
    write_json(sweep_dir / "sweep.json", {"spec": spec, "command": SWEEP_COMMAND, "points": points})
    return sweep_dir
