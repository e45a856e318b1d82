"""TensorBoard HParams for a sweep: `tensorboard --logdir SWEEP` shows one row per point.

The sweep directory gets the experiment config (the varied flags and the metric tags); each point's
`tensorboard/` gets its session (its values of those flags). The HParams plugin finds a session's metric
`(group, tag)` in the run `<session run>/<group>`: the trainer's Keras TensorBoard writes `epoch_loss` and
`epoch_accuracy` to `tensorboard/train` and `tensorboard/validation`, and `tfregimes.evaluate
--tensorboard_dir=RUN/tensorboard/evaluate` writes `test/loss`, `test/accuracy` and `train/<metric>`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from tfregimes.evaluation import EvaluationConfig, scalar_tags

# (group, tag, display name) of what `tfregimes.train` writes under RUN/tensorboard.
TRAINER_METRICS = (
    ("validation", "epoch_accuracy", "test accuracy"),
    ("validation", "epoch_loss", "test loss"),
    ("train", "epoch_accuracy", "train accuracy"),
    ("train", "epoch_loss", "train loss"),
)
EVALUATE_GROUP = "evaluate"
_SUFFIX = ".hparams"


def evaluate_metric_tags(metrics: Sequence[str]) -> list[str]:
    """The tags `tfregimes.evaluate --metrics=METRICS --tensorboard_dir` writes with its default settings."""
    if not metrics:
        return []
    return scalar_tags(EvaluationConfig(model="", dataset="", metrics=tuple(metrics)))


def evaluate_metrics(metric_tags: Sequence[str]) -> list[tuple[str, str, str]]:
    """The metric rows of `tfregimes.evaluate --tensorboard_dir=RUN/tensorboard/evaluate` for its tags."""
    return [(EVALUATE_GROUP, tag, tag) for tag in metric_tags]


def _value(value: Any) -> Any:
    """HParams take bool, int, float or str; a tuple (a list flag) becomes its flag text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return ",".join(str(v) for v in value)


def _write(logdir: Path, summary) -> None:
    writer = EventFileWriter(str(logdir), filename_suffix=_SUFFIX)
    writer.add_event(event_pb2.Event(wall_time=time.time(), summary=summary))
    writer.close()


def write_experiment(sweep_dir: str | Path, point_values: dict[str, dict[str, Any]],
                     metrics: Sequence[tuple[str, str, str]] = TRAINER_METRICS) -> None:
    """The experiment config in `sweep_dir`: every varied flag with the values the points take, and `metrics`.
    Rewritten on every start (the newest config is the one TensorBoard shows)."""
    names = list(dict.fromkeys(name for values in point_values.values() for name in values))
    hparams = []
    for name in names:
        domain = sorted({_value(values[name]) for values in point_values.values() if name in values}, key=str)
        hparams.append(hp.HParam(name, hp.Discrete(domain)))
    config = hp.hparams_config_pb(hparams=hparams, metrics=[
        hp.Metric(tag, group=group, display_name=display) for group, tag, display in metrics])
    for old in Path(sweep_dir).glob(f"events.out.tfevents.*{_SUFFIX}"):
        old.unlink()
    _write(Path(sweep_dir), config)


def write_session(tensorboard_dir: str | Path, trial_id: str, values: dict[str, Any]) -> None:
    """A point's session: its values of the varied flags, once per run directory."""
    tensorboard_dir = Path(tensorboard_dir)
    if any(tensorboard_dir.glob(f"events.out.tfevents.*{_SUFFIX}")):
        return
    _write(tensorboard_dir, hp.hparams_pb({name: _value(v) for name, v in values.items()}, trial_id=trial_id))
