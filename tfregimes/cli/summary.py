"""One-screen summaries the CLIs print at the end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _number(value: Any, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.2f} %" if percent else f"{value:.4f}"


def run_summary(metrics: Mapping[str, Any], *, already_complete: bool = False) -> str:
    title = "Run already complete" if already_complete else "Run finished"
    status = "DIVERGED (non-finite loss" + (f" at epoch {metrics['diverged_at']['epoch']})"
                                            if metrics.get("diverged_at") else ")") if metrics.get("diverged") else "ok"
    rate = metrics.get("images_per_second")
    lines = [
        f"{title}: {metrics['dataset']} / {metrics['model']}, {metrics['epochs_run']} of {metrics['epochs']} epochs"
        + (f" (resumed at epoch {metrics['resumed_from_epoch']})" if metrics.get("resumed_from_epoch") else ""),
        f"  status          {status}",
        f"  train loss      {_number(metrics.get('train_loss'))}    "
        f"accuracy {_number(metrics.get('train_accuracy'), True)}",
        f"  test loss       {_number(metrics.get('test_loss'))}    "
        f"accuracy {_number(metrics.get('test_accuracy'), True)}",
        *([stop_line(metrics["stop"], metrics["epochs_run"])] if metrics.get("stop") else []),
        f"  wall time       {metrics['wall_seconds']:.1f} s"
        + (f"    training {rate:,.0f} images/s" if rate else ""),
        f"  run directory   {metrics['run_dir']}",
    ]
    return "\n".join(lines)


def stop_line(stop: Mapping[str, Any], epochs_run: int) -> str:
    """Where --stop_at_train_loss / --stop_at_train_accuracy stopped the run and the clean value it read there, or
    that the run never reached the target (metrics.json's `stop`)."""
    if stop["criterion"] == "train_loss":
        target, read = f"train loss <= {stop['target']:g}", f"clean loss {_number(stop.get('clean_loss'))}"
    else:
        target = f"train accuracy >= {_number(stop['target'], True)}"
        read = f"clean accuracy {_number(stop.get('clean_accuracy'), True)}"
    if stop.get("reached_target"):
        return f"  stop            reached {target} at epoch {stop['stopped_at_epoch']} ({read}): stopped there"
    return f"  stop            did not reach {target} in {epochs_run} epochs ({read})"


def evaluation_summary(result: Mapping[str, Any]) -> str:
    return "\n".join([
        f"Evaluated {result['model']} on {result['dataset']} ({result['split']} split, {result['examples']} examples)",
        f"  loss            {_number(result['loss'])}",
        f"  accuracy        {_number(result['accuracy'], True)}",
        f"  normalization   {result['normalization']}"
        + (" (carried by the model)" if result.get("normalization_carried_by_model") else ""),
    ])


def metrics_summary(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per metric entry (tfregimes.evaluation.metric_entries): its value, spread or status, and seconds."""
    lines = []
    for name, entry in entries.items():
        spread = f" ± {entry['std']:.3g}" if "std" in entry else ""
        status = f"{entry['status']}; " if "status" in entry else ""
        lines.append(f"  {name:<29} {entry['value']:.6g}{spread}    ({status}{entry['seconds']:.1f} s)")
    return "\n".join(lines)
