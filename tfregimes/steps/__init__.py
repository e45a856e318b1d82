"""Regularized training steps: `RegimeModel` subclasses selected by name (`--regularizer`).

    model = build_regime_model("fisher", network, weight_decay=1e-4, decay_variables=...,
                               fisher_beta=20.0, fisher_subbatches=8, clip_global_norm=5.0)

"none" is the plain step; "fisher" the Fisher-trace regularizer of seed 004 (Algorithm 1); "proximal" Keskar's
conservative training (seed 003, E.2); "sam" Sharpness-Aware Minimization. Each takes only its own options, named
as the flags that set them; `regularizer_options(name)` lists them with their defaults. `RegularizerWindow` turns a
regularizer on for an epoch window.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import keras

from tfregimes.base.registry import Registry
from tfregimes.steps.fisher import FisherRegularizedModel
from tfregimes.steps.plain import RegimeModel, clip_global_norm_across_replicas
from tfregimes.steps.proximal import ProximalModel
from tfregimes.steps.regularized import RegularizedModel
from tfregimes.steps.sam import SAMModel
from tfregimes.steps.window import RegularizerWindow

REGULARIZERS: Registry[type[RegimeModel]] = Registry("regularizer")
REGULARIZERS.register("none", RegimeModel)
REGULARIZERS.register("fisher", FisherRegularizedModel)
REGULARIZERS.register("proximal", ProximalModel)
REGULARIZERS.register("sam", SAMModel)

_COMMON_ARGUMENTS = {"self", "network", "weight_decay", "decay_variables"}


def regularizer_options(name: str) -> dict[str, Any]:
    """The options regularizer `name` takes, with their defaults (empty for "none")."""
    parameters = inspect.signature(REGULARIZERS.get(name).__init__).parameters.values()
    return {p.name: p.default for p in parameters
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _COMMON_ARGUMENTS}


def build_regime_model(name: str, network: keras.Model, *, weight_decay: float = 0.0,
                       decay_variables: Sequence[keras.Variable] = (), **options: Any) -> RegimeModel:
    """Wraps `network` in regularizer `name`'s training step; an option it does not take is an error."""
    valid = regularizer_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"regularizer {name!r} does not take {', '.join(unknown)}; "
                         f"its options are: {', '.join(valid) or 'none'}")
    return REGULARIZERS.get(name)(network, weight_decay=weight_decay, decay_variables=decay_variables, **options)


__all__ = ["REGULARIZERS", "FisherRegularizedModel", "ProximalModel", "RegularizedModel", "RegularizerWindow",
           "SAMModel", "build_regime_model", "clip_global_norm_across_replicas", "regularizer_options"]
