"""Optimizers by name (`OPTIMIZERS`) and `build_optimizer`.

Coupled L2 weight decay (λ·w added to the gradient; the λ of seed 002's tuning factor, eq. 27)
is not done here: the trainer adds it to the gradients of the variables that decay.
`decoupled_weight_decay` is Keras' decoupled form (w ← w − η·λ·w after each update, Loshchilov &
Hutter 2019). LARS has its own weight decay inside its trust ratio; pass it as `weight_decay=`.

Momentum convention: Keras SGD keeps v ← μv − η∇f, w ← w + v. Seed 001 writes heavy ball as
g ← μg + ∇f, w ← w − ηg; the two agree while η is constant.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import keras

from tfregimes.base.registry import Registry
from tfregimes.optim.lars import LARS

OPTIMIZERS: Registry = Registry("optimizer")


def _decay_or_none(decoupled_weight_decay: float) -> float | None:
    # Keras skips its decoupled-decay pass only when weight_decay is None.
    return decoupled_weight_decay or None


@OPTIMIZERS.register("sgd")
def _sgd(learning_rate, *, global_clipnorm, momentum: float = 0.0, nesterov: bool = False,
         decoupled_weight_decay: float = 0.0):
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=float(momentum),
                                nesterov=nesterov,
                                weight_decay=_decay_or_none(decoupled_weight_decay),
                                global_clipnorm=global_clipnorm)


@OPTIMIZERS.register("adam")
def _adam(learning_rate, *, global_clipnorm, decoupled_weight_decay: float = 0.0,
          beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
          amsgrad: bool = False):
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                                 epsilon=epsilon, amsgrad=amsgrad,
                                 weight_decay=_decay_or_none(decoupled_weight_decay),
                                 global_clipnorm=global_clipnorm)


@OPTIMIZERS.register("adamw")
def _adamw(learning_rate, *, global_clipnorm, decoupled_weight_decay: float = 0.0,
           beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
           amsgrad: bool = False):
    # Keras' AdamW refuses weight_decay=None; 0.0 makes it plain Adam, as asked.
    return keras.optimizers.AdamW(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                                  epsilon=epsilon, amsgrad=amsgrad,
                                  weight_decay=float(decoupled_weight_decay),
                                  global_clipnorm=global_clipnorm)


@OPTIMIZERS.register("lars")
def _lars(learning_rate, *, global_clipnorm, momentum: float = 0.0, weight_decay: float = 0.0,
          trust_coefficient: float = 0.001, epsilon: float = 1e-9,
          exclude_vectors: bool = True, exclude_from_adaptation: Sequence[str] = ()):
    return LARS(learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay,
                trust_coefficient=trust_coefficient, epsilon=epsilon,
                exclude_vectors=exclude_vectors,
                exclude_from_adaptation=exclude_from_adaptation,
                global_clipnorm=global_clipnorm)


_COMMON_DEFAULTS = {"momentum": 0.0, "nesterov": False, "decoupled_weight_decay": 0.0}


def build_optimizer(name: str, *, learning_rate, momentum: float = 0.0, nesterov: bool = False,
                    decoupled_weight_decay: float = 0.0, global_clipnorm: float | None = None,
                    **optimizer_specific) -> keras.optimizers.Optimizer:
    """The optimizer `name` (see `OPTIMIZERS.names()`).

    `learning_rate` is a float or a schedule (`build_schedule`). `momentum`/`nesterov` apply to
    SGD (`momentum` also to LARS), `decoupled_weight_decay` to SGD/Adam/AdamW; setting one for an
    optimizer without it is an error. `optimizer_specific` holds the rest, e.g. Adam's `beta_1`,
    LARS' `weight_decay`, `trust_coefficient`, `epsilon`, `exclude_vectors`,
    `exclude_from_adaptation`; an argument the optimizer does not take is an error.
    """
    builder = OPTIMIZERS.get(name)
    if global_clipnorm is not None and global_clipnorm <= 0:
        raise ValueError(f"global_clipnorm must be > 0, got {global_clipnorm}")
    accepted = inspect.signature(builder).parameters
    arguments = dict(optimizer_specific)
    for option, value in (("momentum", momentum), ("nesterov", nesterov),
                          ("decoupled_weight_decay", decoupled_weight_decay)):
        if option in accepted:
            arguments[option] = value
        elif value != _COMMON_DEFAULTS[option]:
            raise ValueError(f"optimizer {name!r} does not use {option} (got {value!r})")
    specific = sorted(set(accepted) - {"learning_rate", "global_clipnorm"}
                      - set(_COMMON_DEFAULTS))
    unknown = sorted(set(optimizer_specific) - set(specific))
    if unknown:
        raise ValueError(f"optimizer {name!r} does not take {', '.join(unknown)}; its specific "
                         f"arguments are: {', '.join(specific) or 'none'}")
    return builder(learning_rate, global_clipnorm=global_clipnorm, **arguments)
