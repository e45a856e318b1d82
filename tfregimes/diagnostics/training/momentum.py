"""Momentum scale and alignment (seed 001, Leclerc & Madry 2020, eqs. 3 and 4, §3.1).

Convention. Seed 001 writes heavy ball as g ← μg + ∇f(w), w ← w − ηg (eq. 2). Keras' SGD keeps the velocity
v ← μv − η∇f(w), w ← w + v (with Nesterov, w ← w + μv − η∇f(w); the buffer is the same). At constant η the two
agree with v = −ηg; under a schedule we take g_t := −v_t/η_t with η_t the learning rate of the step that produced
v_t, i.e. the buffer measured in units of that step's learning rate.

    scale      r_t = ‖g_t‖ / ‖∇f(w_t)‖ = ‖v_t‖ / (η_t·‖∇f(w_t)‖)                         (eq. 4)
    alignment  s_t = cos(−g_t, x* − x_t) = ⟨v_t, x* − x_t⟩ / (‖v_t‖·‖x* − x_t‖)          (eq. 3)

The alignment uses the direction the buffer moves the weights (−g_t, i.e. v_t): with eq. 3's g taken literally,
an ascent direction, s_t would tend to −1 on the convex quadratic where §3.1 reports that it tends to +1. x* is
unknown during training; as in seed 001 (footnote 2) it is the solution training converged to, the final weights,
so s_t is computed after training from snapshots (v_t, x_t) recorded at chosen steps.

∇f(w_t) in eq. 4 is the gradient of the training objective (data loss plus coupled weight decay, exactly what the
`RegimeModel` computes for its optimizer, including a regime's extra terms) on a fixed probe batch of training
examples at the current weights, in training mode (batch statistics, dropout); every state variable the pass
touches (BN moving statistics, dropout seeds) is restored, so the diagnostic does not change the run.
On a noiseless quadratic (the test) it is the exact gradient and r_t → 1/(1 − μ), s_t → 1 (seed 001 §3.1).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf


def flatten(values: Sequence) -> np.ndarray:
    """The concatenation of `values` (arrays, tensors or variables) as one float32 vector."""
    return np.concatenate([np.asarray(keras.ops.convert_to_numpy(v), np.float32).ravel() for v in values])


def heavy_ball_buffers(optimizer: keras.optimizers.Optimizer, variables: Sequence[keras.Variable]) -> list:
    """Keras SGD's velocity v of each variable (see the module docstring); ValueError for other optimizers."""
    if not isinstance(optimizer, keras.optimizers.SGD) or not optimizer.momentum:
        raise ValueError(f"the momentum diagnostic needs keras SGD with momentum > 0 (a heavy-ball buffer); got "
                         f"{type(optimizer).__name__} with momentum={getattr(optimizer, 'momentum', None)}")
    if not optimizer.built:
        raise ValueError("the optimizer is not built yet: it has no momentum buffers")
    # Keras' own variable -> slot index (private, but the only public alternative is the order of `build`).
    return [optimizer.momentums[optimizer._get_variable_index(v)] for v in variables]


def momentum_scale(velocity: Sequence, gradient: Sequence, learning_rate: float) -> float:
    """Seed 001 eq. 4 in Keras' convention: ‖v‖ / (η‖∇f‖) = ‖g‖ / ‖∇f‖ with g = −v/η."""
    return float(np.linalg.norm(flatten(velocity).astype(np.float64))
                 / (learning_rate * np.linalg.norm(flatten(gradient).astype(np.float64))))


def momentum_alignment(velocity: Sequence, weights: Sequence, final_weights: Sequence) -> float:
    """Seed 001 eq. 3 with the step direction: cos(v_t, x* − x_t); NaN when either vector is zero."""
    v = flatten(velocity).astype(np.float64)
    to_final = flatten(final_weights).astype(np.float64) - flatten(weights).astype(np.float64)
    denominator = np.linalg.norm(v) * np.linalg.norm(to_final)
    return float(v @ to_final / denominator) if denominator > 0 else float("nan")


class ProbeGradient:
    """‖v‖² and ‖∇f(w)‖² at the model's current weights, ∇f on a fixed probe set, leaving every state as it was.

    ∇f is `model.compute_gradients` (the `RegimeModel` hook: data loss + weight decay + regime terms) in training
    mode, averaged over chunks of at most `chunk_size` examples (weighted by chunk size) so that a large probe set
    fits in memory like a training batch. The model's non-trainable state (BN moving statistics, seed-generator
    states) is saved before and restored after, so the next training step sees what it would have without it.
    """

    def __init__(self, model: keras.Model, buffers: Sequence[keras.Variable], *, chunk_size: int):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.model = model
        self.buffers = list(buffers)
        self.chunk_size = chunk_size
        self._state = list(model.non_trainable_variables)
        self._save = tf.function(lambda: [tf.identity(v.value) for v in self._state], autograph=False)
        self._restore = tf.function(self._restore_state, autograph=False)
        self._gradients = tf.function(self._weighted_gradients, autograph=False, reduce_retracing=True)
        self._squared_norms = tf.function(self._norms, autograph=False)

    def _restore_state(self, saved):
        for variable, value in zip(self._state, saved):
            variable.assign(value)

    def _weighted_gradients(self, x, y, weight):
        _, _, gradients = self.model.compute_gradients(x, y)
        return [tf.zeros_like(v) if g is None else tf.cast(g, v.dtype) * weight
                for g, v in zip(gradients, self.model.trainable_variables)]

    def _norms(self, gradients):
        return (tf.add_n([tf.reduce_sum(tf.square(b.value)) for b in self.buffers]),
                tf.add_n([tf.reduce_sum(tf.square(g)) for g in gradients]))

    def __call__(self, x, y) -> tuple[float, float]:
        """(‖v‖², ‖∇f(w)‖²) with ∇f the example-weighted mean gradient over (x, y)."""
        saved = self._save()
        total = None
        try:
            for start in range(0, len(x), self.chunk_size):
                chunk_x, chunk_y = x[start:start + self.chunk_size], y[start:start + self.chunk_size]
                weight = tf.constant(len(chunk_x) / len(x), tf.float32)
                gradients = self._gradients(chunk_x, chunk_y, weight)
                total = gradients if total is None else [a + b for a, b in zip(total, gradients)]
        finally:
            self._restore(saved)
        squared_velocity, squared_gradient = self._squared_norms(total)
        return float(squared_velocity), float(squared_gradient)


@dataclasses.dataclass
class MomentumSnapshot:
    """The weights x_t and Keras velocity v_t (flattened, float32) after optimizer step `step`."""

    epoch: int  # 1-based: the snapshot was taken at the end of this epoch
    step: int
    learning_rate: float  # η_t of the step that produced v_t
    weights: np.ndarray
    velocity: np.ndarray


class SnapshotStore:
    """Snapshots kept in memory, or as `step-NNNNNNNNN.npz` files in `directory` (which survive a resume)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory else None
        self._in_memory: dict[int, MomentumSnapshot] = {}

    def add(self, snapshot: MomentumSnapshot) -> None:
        if self.directory is None:
            self._in_memory[snapshot.step] = snapshot
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".snapshot.", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, epoch=snapshot.epoch, step=snapshot.step, learning_rate=snapshot.learning_rate,
                     weights=snapshot.weights, velocity=snapshot.velocity)
        os.replace(tmp, self.directory / f"step-{snapshot.step:09d}.npz")

    def steps(self) -> list[int]:
        if self.directory is None:
            return sorted(self._in_memory)
        return sorted(int(p.stem.split("-")[1]) for p in self.directory.glob("step-*.npz"))

    def load(self, step: int) -> MomentumSnapshot:
        if self.directory is None:
            return self._in_memory[step]
        with np.load(self.directory / f"step-{step:09d}.npz") as data:
            return MomentumSnapshot(epoch=int(data["epoch"]), step=int(data["step"]),
                                    learning_rate=float(data["learning_rate"]), weights=data["weights"],
                                    velocity=data["velocity"])


def alignment_series(store: SnapshotStore, final_weights: np.ndarray) -> list[dict]:
    """Seed 001 eq. 3 for every stored snapshot against `final_weights` (x*), one dict per snapshot in step order:
    epoch, step, alignment, and ‖x* − x_t‖ (the alignment is NaN where that distance is 0)."""
    final = np.asarray(final_weights, np.float64)
    records = []
    for step in store.steps():
        snapshot = store.load(step)
        records.append({"epoch": snapshot.epoch, "step": snapshot.step,
                        "alignment": momentum_alignment([snapshot.velocity], [snapshot.weights], [final]),
                        "distance_to_final": float(np.linalg.norm(final - snapshot.weights))})
    return records
