"""Effective learning rate and the tuning factor of a scale-invariant network (seed 002, Yun et al. 2022).

For weights x of a scale-invariant network, SGD moves the direction x/‖x‖ by η/‖x‖² times the gradient of the
unit vector (seed 002 eq. 8), hence

    effective learning rate            η_eff   = η / ‖x‖²                      (eq. 9)
    effective learning rate per epoch  η_epoch = η_eff · N/B = ηN / (‖x‖²B)    (eq. 10)
    tuning factor                      N·η·λ / (B·(1 − μ))                     (eq. 27)

with N training examples, batch size B, learning rate η, coupled L2 weight decay λ (λ·x added to the gradient,
tfregimes' `--weight_decay`) and heavy-ball momentum μ. Eq. 27 says cos Δθ ≈ 1 − tuning factor for the angular
update per epoch Δθ (eq. 11), so well-tuned settings share it (seed 002 uses 10/128 for CIFAR-10).
"""

from __future__ import annotations

import math


def effective_learning_rate(learning_rate: float, squared_norm: float) -> float:
    """Seed 002 eq. 9: η / ‖x‖²."""
    return learning_rate / squared_norm if squared_norm > 0 else math.inf


def effective_learning_rate_per_epoch(learning_rate: float, squared_norm: float, *, num_train: int,
                                      batch_size: int) -> float:
    """Seed 002 eq. 10: η_eff · N/B = ηN / (‖x‖²B), the effective learning rate times the steps of one epoch."""
    _check_counts(num_train, batch_size)
    return effective_learning_rate(learning_rate, squared_norm) * num_train / batch_size


def tuning_factor(*, num_train: int, learning_rate: float, weight_decay: float, batch_size: int,
                  momentum: float = 0.0, decoupled_weight_decay: float = 0.0) -> float:
    """Seed 002 eq. 27: N·η·λ / (B·(1 − μ)); λ is coupled L2 decay (λ·w in the gradient), μ heavy-ball momentum.

    Decoupled decay λ_d (Keras': w ← w − η·λ_d·w after each step, outside the momentum buffer) is not in seed 002;
    it shrinks the weights by η·λ_d per step, as coupled decay (1 − μ)·λ_d does through the buffer, so it adds
    N·η·λ_d / B: the factor is N·η·(λ/(1 − μ) + λ_d) / B.
    """
    _check_counts(num_train, batch_size)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    return num_train * learning_rate * (weight_decay / (1.0 - momentum) + decoupled_weight_decay) / batch_size


def equilibrium_angular_update(tuning_factor_value: float) -> float:
    """Seed 002 eq. 27 (eq. 18 for μ = 0): ⟨Y_t, Y_t+η⟩ ≈ 1 − N·η·λ/(B(1 − μ)), so the angular update per epoch
    that the tuning factor T predicts once the weight norm has settled is Δθ = arccos(1 − T) radians (≈ √(2T) for
    small T). The paper derives it assuming the weights barely move within the interval (§4); defined for
    0 ≤ T ≤ 2."""
    if not 0.0 <= tuning_factor_value <= 2.0:
        raise ValueError(f"the tuning factor must be in [0, 2] for arccos(1 - T), got {tuning_factor_value}")
    return math.acos(1.0 - tuning_factor_value)


def _check_counts(num_train: int, batch_size: int) -> None:
    if num_train < 1 or batch_size < 1:
        raise ValueError(f"num_train and batch_size must be positive, got {num_train} and {batch_size}")
