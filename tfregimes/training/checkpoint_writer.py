"""Checkpoints written off the training thread: the model's and optimizer's values are copied at the end of an epoch
(milliseconds) and written to `checkpoints/epoch-NNNN.weights.h5` by a background thread while the next epoch trains.

Keras' `save_weights` walks the model, reads every variable and writes the HDF5 file in one call: about 80 ms on the
default digits CNN here, 40 % of its 0.2-second epoch (issue 23, item 8). The walk is done once
(`keras_private.weights_layout`); each checkpoint then only copies the values (`WeightsSnapshot.take`) and the
background thread writes them in Keras' own format (`keras_private.write_weights`), so `load_weights` reads the file
as it reads one `save_weights` wrote. A checkpoint appears under its name only once complete (written beside it
and renamed), so a kill never leaves a torn file under a checkpoint's name.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from tfregimes.base import keras_private
from tfregimes.base.run_files import atomic_path

Groups = list[tuple[str, dict | None, list[tuple[str, np.ndarray]]]]


class WeightsSnapshot:
    """Copies of what `model.save_weights` would write now, for `write_checkpoint` to write later."""

    def __init__(self, model: keras.Model):
        self.model = model
        self._layout: list[tuple[str, dict | None, Any]] | None = None
        self._built_for: tuple[int, int, int] | None = None

    def _structure(self) -> tuple[int, int, int]:
        # A recompile (a phase switch) brings a new optimizer, and building one adds variables: walk again then.
        optimizer = self.model.optimizer
        return id(optimizer), len(self.model.variables), len(optimizer.variables) if optimizer is not None else 0

    def take(self) -> Groups:
        """[(group path, metadata, [(key, array)])] as `save_weights` would write them now; the arrays are copies,
        so training may go on updating the variables."""
        structure = self._structure()
        if self._layout is None or structure != self._built_for:
            self._layout, self._built_for = keras_private.weights_layout(self.model), structure
        groups = []
        for path, metadata, owner in self._layout:
            entries: dict[str, Any] = {}
            owner.save_own_variables(entries)  # Keras' public per-object saving: what it writes into the group.
            groups.append((path, metadata, [(key, np.array(keras.ops.convert_to_numpy(value), copy=True))
                                            for key, value in entries.items()]))
        return groups


def write_checkpoint(path: str | os.PathLike, groups: Groups) -> None:
    """Writes `groups` to `path` (a `.weights.h5` file) beside it first, then renames it: `path` names only a
    complete file. Synced before the rename, so that progress.json, written after, never outlives it."""
    with atomic_path(path) as tmp:
        keras_private.write_weights(str(tmp), groups)
