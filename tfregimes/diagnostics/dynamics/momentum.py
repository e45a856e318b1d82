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
so s_t is computed after training from snapshots (v_t, x_t) recorded at the end of the measured epochs.

∇f(w_t) in eq. 4 is the gradient of the training objective at the current weights (`objective_gradients`: for the
`RegimeModel`, data loss plus coupled weight decay, exactly what it computes for its optimizer, including a regime's
extra terms; for any other Keras model, what Keras' own `train_step` differentiates: `compute_loss`, the compiled
loss plus the layers' regularization losses) on a fixed probe set of training examples (the same examples every
time), averaged over chunks of at most a training batch, in training mode (batch statistics, dropout). Every
state variable the pass touches (BN moving statistics, dropout seeds) is restored, so the diagnostic does not change
the run. The probe gradient is not clipped (the optimizer's `global_clipnorm`, if any, is not applied). On a
noiseless quadratic (the test) it is the exact gradient, and r_t → 1/(1 − μ), s_t → 1 (seed 001 §3.1).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfregimes.base import keras_private
from tfregimes.base.background import BackgroundFiles
from tfregimes.base.run_files import atomic_file


def flatten(values: Sequence) -> np.ndarray:
    """The concatenation of `values` (arrays, tensors or variables) as one float32 vector."""
    return np.concatenate([np.asarray(keras.ops.convert_to_numpy(v), np.float32).ravel() for v in values])


def make_device_flatten(variables: Sequence):
    """A compiled no-argument `flatten` of the variables' current values: one device-to-host copy, not one each."""
    variables = list(variables)
    compute = tf.function(lambda: tf.concat([tf.reshape(tf.cast(tf.convert_to_tensor(v), tf.float32), [-1])
                                             for v in variables], axis=0), autograph=False)
    return lambda: compute().numpy()


def check_heavy_ball(optimizer: keras.optimizers.Optimizer) -> None:
    """ValueError, in one line, unless `optimizer` is Keras SGD with momentum > 0: only it keeps a heavy-ball buffer
    (Adam's first moment is an average of gradients, not a velocity of the weights)."""
    if not isinstance(optimizer, keras.optimizers.SGD) or not optimizer.momentum:
        raise ValueError(f"the momentum diagnostic needs keras SGD with momentum > 0 (a heavy-ball buffer); got "
                         f"{type(optimizer).__name__} with momentum={getattr(optimizer, 'momentum', None)}")


def heavy_ball_buffers(optimizer: keras.optimizers.Optimizer, variables: Sequence[keras.Variable]) -> list:
    """Keras SGD's velocity v of each variable (see the module docstring); ValueError for other optimizers."""
    check_heavy_ball(optimizer)
    if not optimizer.built:
        raise ValueError("the optimizer is not built yet: it has no momentum buffers")
    # Keras' own variable -> slot index (private, but the only public alternative is the order of `build`).
    return [optimizer.momentums[keras_private.optimizer_variable_index(optimizer, v)] for v in variables]


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


def objective_gradients(model: keras.Model, x, y) -> list:
    """∇ of what `fit` minimizes on (x, y), w.r.t. `model.trainable_variables`, in training mode: a model with the
    `RegimeModel` hook `compute_gradients(x, y)` (data loss + weight decay + regime terms) answers itself; any other
    Keras model gets the gradient of `compute_loss`, as Keras' own `train_step` takes it (no sample weights)."""
    if hasattr(model, "compute_gradients"):
        return model.compute_gradients(x, y)[2]
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True), training=True)
    return tape.gradient(loss, model.trainable_variables)


class ProbeGradient:
    """‖v‖² and ‖∇f(w)‖² at the model's current weights, ∇f on a fixed probe set, leaving every state as it was.

    ∇f is `objective_gradients` (any Keras model; the `RegimeModel`'s full objective) in training mode, averaged
    over chunks of at most `chunk_size` examples (weighted by chunk size) so that a large probe set fits in memory
    like a training batch. The model's non-trainable state (BN moving statistics, seed-generator
    states) is saved before and restored after, so the next training step sees what it would have without it.
    One compiled call does it all (the chunks are a graph loop).
    """

    def __init__(self, model: keras.Model, buffers: Sequence[keras.Variable], *, chunk_size: int):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.model = model
        self.buffers = list(buffers)
        self.chunk_size = chunk_size
        self._state = list(model.non_trainable_variables)
        self._probe = tf.function(self._squared_norms, reduce_retracing=True)

    def _squared_norms(self, x, y):
        saved = [tf.identity(v.value) for v in self._state]
        count = tf.shape(x)[0]
        variables = self.model.trainable_variables
        total = [tf.zeros(v.shape, v.dtype) for v in variables]
        one_chunk = x.shape[0] is not None and x.shape[0] <= self.chunk_size
        with tf.control_dependencies(saved):
            if one_chunk:  # The usual one-batch probe: without a graph loop it ran ~20 % faster (cnn_small, CPU).
                gradients = objective_gradients(self.model, x, y)
                total = [t if g is None else tf.cast(g, t.dtype) for t, g in zip(total, gradients)]
            else:
                for start in tf.range(0, count, self.chunk_size):
                    chunk_x, chunk_y = x[start:start + self.chunk_size], y[start:start + self.chunk_size]
                    weight = tf.cast(tf.shape(chunk_x)[0], tf.float32) / tf.cast(count, tf.float32)
                    gradients = objective_gradients(self.model, chunk_x, chunk_y)
                    total = [t if g is None else t + tf.cast(g, t.dtype) * tf.cast(weight, t.dtype)
                             for t, g in zip(total, gradients)]
        squared_gradient = tf.add_n([tf.reduce_sum(tf.square(tf.cast(t, tf.float32))) for t in total])
        with tf.control_dependencies([squared_gradient]):
            for variable, value in zip(self._state, saved):
                variable.assign(value)
        squared_velocity = tf.add_n([tf.reduce_sum(tf.square(tf.cast(b.value, tf.float32))) for b in self.buffers])
        return squared_velocity, squared_gradient

    def __call__(self, x, y) -> tuple[float, float]:
        """(‖v‖², ‖∇f(w)‖²) with ∇f the example-weighted mean gradient over (x, y)."""
        squared_velocity, squared_gradient = self._probe(tf.convert_to_tensor(x), tf.convert_to_tensor(y))
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
    """Snapshots kept in memory, or as `epoch-NNNNNN.npz` files in `directory` (which survive a resume), one per
    epoch: keyed by epoch, not optimizer step, because a phase switch starts a fresh optimizer whose step count
    restarts, and phase 2's snapshots would replace phase 1's.

    Files are written on the `background` thread (`BackgroundFiles`), so that training goes on while one is
    written; reading waits for the writes in flight.
    """

    def __init__(self, directory: str | os.PathLike | None = None, *, background: BackgroundFiles | None = None):
        self.directory = Path(directory) if directory else None
        self._in_memory: dict[int, MomentumSnapshot] = {}
        self.background = background or BackgroundFiles()

    def add(self, snapshot: MomentumSnapshot) -> None:
        if self.directory is None:
            self._in_memory[snapshot.epoch] = snapshot
            return
        self.background.submit(self._write, snapshot)

    def wait(self) -> None:
        """Returns when every snapshot added so far is on disk (raising what a write raised)."""
        self.background.wait()

    def _write(self, snapshot: MomentumSnapshot) -> None:
        with atomic_file(self.directory / f"epoch-{snapshot.epoch:06d}.npz", "wb", fsync=False) as f:
            np.savez(f, epoch=snapshot.epoch, step=snapshot.step, learning_rate=snapshot.learning_rate,
                     weights=snapshot.weights, velocity=snapshot.velocity)

    def epochs(self) -> list[int]:
        self.wait()
        if self.directory is None:
            return sorted(self._in_memory)
        return sorted(int(p.stem.split("-")[1]) for p in self.directory.glob("epoch-*.npz"))

    def load(self, epoch: int) -> MomentumSnapshot:
        self.wait()
        if self.directory is None:
            return self._in_memory[epoch]
        with np.load(self.directory / f"epoch-{epoch:06d}.npz") as data:
            return MomentumSnapshot(epoch=int(data["epoch"]), step=int(data["step"]),
                                    learning_rate=float(data["learning_rate"]), weights=data["weights"],
                                    velocity=data["velocity"])


def alignment_series(store: SnapshotStore, final_weights: np.ndarray) -> list[dict]:
    """Seed 001 eq. 3 for every stored snapshot against `final_weights` (x*), one dict per snapshot in epoch order:
    epoch, step, alignment, and ‖x* − x_t‖ (the alignment is NaN where that distance is 0)."""
    final = np.asarray(final_weights, np.float64)
    records = []
    for epoch in store.epochs():
        snapshot = store.load(epoch)
        records.append({"epoch": snapshot.epoch, "step": snapshot.step,
                        "alignment": momentum_alignment([snapshot.velocity], [snapshot.weights], [final]),
                        "distance_to_final": float(np.linalg.norm(final - snapshot.weights))})
    return records
