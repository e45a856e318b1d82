"""Angular update per epoch (seed 002, Yun et al. 2022, eq. 11).

    Δθ_e = ∠(x_e, x_{e-1}) = arccos(⟨x_e, x_{e-1}⟩ / (‖x_e‖·‖x_{e-1}‖)),

the angle between the weight vectors at the ends of consecutive epochs, for the whole vector x (all selected
weights concatenated) and for each layer's weights. Eq. 11 through arccos loses half the digits for small angles
(1 − cos θ ≈ θ²/2 drowns in rounding), and so does any formula that starts from ‖x‖, ‖y‖ and ‖x − y‖ when the
norms differ. The angle is computed instead as θ = 2·arcsin(‖x/‖x‖ − y/‖y‖‖ / 2) from the difference of the unit
vectors, taken element by element, which is accurate to rounding for any angle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf


def angle_from_unit_difference(unit_difference) -> np.ndarray:
    """θ (radians) from ‖x̂ − ŷ‖ = 2·sin(θ/2)."""
    half_chord = np.clip(np.asarray(unit_difference, np.float64) / 2.0, 0.0, 1.0)
    return 2.0 * np.arcsin(half_chord)


def angle_between(previous: Sequence, current: Sequence) -> float:
    """Seed 002 eq. 11: the angle (radians) between two weight vectors, each a list of arrays (concatenated)."""
    p = np.concatenate([np.asarray(v, np.float64).ravel() for v in previous])
    c = np.concatenate([np.asarray(v, np.float64).ravel() for v in current])
    p_norm, c_norm = np.linalg.norm(p), np.linalg.norm(c)
    if p_norm == 0 or c_norm == 0:
        return float("nan")  # a zero vector has no direction
    return float(angle_from_unit_difference(np.linalg.norm(p / p_norm - c / c_norm)))


def angular_update(previous: Sequence, current: Sequence) -> float:
    """Seed 002 eq. 11 for the whole weight vector (lists of per-variable arrays)."""
    return angle_between(previous, current)


def make_device_angles(previous: Sequence, current: Sequence, groups: Mapping[str, Sequence[int]]):
    """A compiled function returning (whole-vector angle, {group: angle}) between the current values of the
    variables `previous` and `current`, then assigning `current` to `previous` in the same call (the next epoch's
    reference); the work stays on the device and 2·(groups + 1) numbers cross over."""
    previous, current = list(previous), list(current)
    names, index_lists = list(groups), [list(indices) for indices in groups.values()]

    def unit_difference(p, c, indices, p_squares, c_squares):
        p_norm = tf.sqrt(tf.add_n([p_squares[i] for i in indices]))
        c_norm = tf.sqrt(tf.add_n([c_squares[i] for i in indices]))
        difference = tf.add_n([tf.reduce_sum(tf.square(p[i] / p_norm - c[i] / c_norm)) for i in indices])
        return tf.sqrt(difference), p_norm * c_norm

    @tf.function(autograph=False)
    def compute_then_copy():
        p = [tf.cast(tf.convert_to_tensor(v), tf.float32) for v in previous]
        c = [tf.cast(tf.convert_to_tensor(v), tf.float32) for v in current]
        p_squares = [tf.reduce_sum(tf.square(t)) for t in p]
        c_squares = [tf.reduce_sum(tf.square(t)) for t in c]
        results = [unit_difference(p, c, indices, p_squares, c_squares)
                   for indices in [list(range(len(p)))] + index_lists]
        differences, norm_products = tf.stack([r[0] for r in results]), tf.stack([r[1] for r in results])
        with tf.control_dependencies([differences, norm_products]):
            copies = [v.assign(tf.convert_to_tensor(c_v)) for v, c_v in zip(previous, current)]
        with tf.control_dependencies(copies):
            return tf.identity(differences), tf.identity(norm_products)

    def angles() -> tuple[float, dict[str, float]]:
        differences, norm_products = (t.numpy() for t in compute_then_copy())
        values = np.where(norm_products > 0, angle_from_unit_difference(differences), np.nan)
        return float(values[0]), dict(zip(names, map(float, values[1:])))

    return angles
