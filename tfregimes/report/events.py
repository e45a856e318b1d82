"""Reading back what the training diagnostics wrote only to TensorBoard: the margin histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

MARGIN_HISTOGRAM_TAG = "margin/input"


def last_histogram(log_dir: Path, tag: str = MARGIN_HISTOGRAM_TAG):
    """(1-based epoch, left edges, right edges, counts) of the last `tag` histogram in `log_dir`, or None.
    The diagnostics write histograms with step = 0-based epoch, as tensors of rows (left, right, count)."""
    if not log_dir.is_dir():
        return None
    accumulator = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    if tag not in accumulator.Tags().get("tensors", []):
        return None
    event = max(accumulator.Tensors(tag), key=lambda e: e.step)
    buckets = np.asarray(tensor_util.make_ndarray(event.tensor_proto), dtype=float)
    if buckets.ndim != 2 or buckets.shape[1] != 3:
        return None
    return event.step + 1, buckets[:, 0], buckets[:, 1], buckets[:, 2]
