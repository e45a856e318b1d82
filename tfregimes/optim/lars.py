"""LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017, Algorithm 1), for Keras 3.

Seed 000 compares its two-phase method with LARS under Goyal et al.'s schedule. Keras 3 has no
LARS, and the TF Model Garden one only runs on legacy Keras.

For each adapted variable w with gradient g (You et al. 2017, Algorithm 1):

    local_lr = trust_coefficient · ‖w‖ / (‖g‖ + weight_decay · ‖w‖ + epsilon)
    v ← momentum · v + learning_rate · local_lr · (g + weight_decay · w)
    w ← w − v

with local_lr = 1 when ‖w‖ = 0 or ‖g‖ = 0 (a freshly zero-initialised variable, or one that gets
no gradient), as the TF Model Garden and apex implementations do. Variables excluded from adaptation
(by default every variable of rank ≤ 1: biases and BatchNorm γ/β) take a plain momentum step:
v ← momentum · v + learning_rate · (g + weight_decay · w); w ← w − v.

Which variables decay is a separate choice (`decay_only`, the trainer's `--weight_decay_scope`): a
variable outside it takes its step with weight_decay = 0 (its trust ratio too). Without `decay_only`,
the adapted variables decay and the excluded ones do not (You et al.'s and the Model Garden's default).

`weight_decay` here is LARS' own, coupled decay. Keras' decoupled decay pass (the base class'
`weight_decay`) is switched off, so the decay is applied exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import keras
from keras import ops

from tfregimes.base import keras_private


@keras.saving.register_keras_serializable(package="tfregimes")
class LARS(keras.optimizers.Optimizer):
    """LARS with heavy-ball momentum; see the module docstring for the update.

    Args:
        learning_rate: float or `LearningRateSchedule` (the global rate of You et al.).
        momentum: μ in [0, 1).
        weight_decay: β of You et al., applied inside the trust ratio (see `decay_only` for which variables).
        trust_coefficient: η of You et al. (0.001 in the paper).
        epsilon: added to the trust ratio's denominator (1e-9, as the TF Model Garden's LARS).
        exclude_vectors: exclude variables of rank ≤ 1 (biases, BatchNorm γ/β) from adaptation
            and weight decay.
        exclude_from_adaptation: regular expressions; a variable whose `path` (e.g.
            "resnet/fc/bias") matches one is excluded too. Use `exclude_variables` for objects.
        global_clipnorm: clip gradients by their global norm first.
    """

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 0.001, epsilon: float = 1e-9,
                 exclude_vectors: bool = True, exclude_from_adaptation: Sequence[str] = (),
                 global_clipnorm: float | None = None, name: str | None = None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=None,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0 or trust_coefficient <= 0 or epsilon < 0:
            raise ValueError("LARS needs weight_decay >= 0, trust_coefficient > 0, epsilon >= 0; "
                             f"got {weight_decay}, {trust_coefficient}, {epsilon}")
        self.momentum = float(momentum)
        self.lars_weight_decay = float(weight_decay)
        self.trust_coefficient = float(trust_coefficient)
        self.epsilon = float(epsilon)
        self.exclude_vectors = bool(exclude_vectors)
        if isinstance(exclude_from_adaptation, str):
            exclude_from_adaptation = [exclude_from_adaptation]
        self.exclude_from_adaptation = [str(p) for p in exclude_from_adaptation]
        self._excluded_variable_keys = set()
        self._decayed_variable_keys: set | None = None  # None: decay exactly the adapted variables.

    def exclude_variables(self, variables: Iterable) -> None:
        """Excludes these variable objects from adaptation and decay; call before `build`."""
        if self.built:
            raise ValueError("exclude_variables must be called before the optimizer is built")
        self._excluded_variable_keys.update(keras_private.optimizer_variable_key(self, v) for v in variables)

    def decay_only(self, variables: Iterable) -> None:
        """Applies weight decay to exactly these variable objects (adapted or not); call before `build`."""
        if self.built:
            raise ValueError("decay_only must be called before the optimizer is built")
        self._decayed_variable_keys = {keras_private.optimizer_variable_key(self, v) for v in variables}

    def is_decayed(self, variable) -> bool:
        if self._decayed_variable_keys is None:
            return self.is_adapted(variable)
        return keras_private.optimizer_variable_key(self, variable) in self._decayed_variable_keys

    def is_adapted(self, variable) -> bool:
        """Whether `variable` gets the trust-ratio step (else a plain momentum step)."""
        if keras_private.optimizer_variable_key(self, variable) in self._excluded_variable_keys:
            return False
        if self.exclude_vectors and len(variable.shape) <= 1:
            return False
        path = getattr(variable, "path", variable.name)
        return not any(re.search(pattern, path) for pattern in self.exclude_from_adaptation)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.velocities = self.add_optimizer_variables(variables, "velocity")
        # Decided once here, where the variables still carry their Keras paths; update_step
        # receives the backend variables and looks the decision up by index.
        self._adapted = tuple(self.is_adapted(v) for v in variables)
        self._decayed = tuple(self.is_decayed(v) for v in variables)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(ops.convert_to_tensor(gradient), dtype)
        index = keras_private.optimizer_variable_index(self, variable)
        velocity = self.velocities[index]
        weight_decay = ops.cast(self.lars_weight_decay if self._decayed[index] else 0.0, dtype)
        if self._adapted[index]:
            weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
            grad_norm = ops.sqrt(ops.sum(ops.square(gradient)))
            trust_ratio = self.trust_coefficient * weight_norm / (
                grad_norm + weight_decay * weight_norm + self.epsilon)
            both_nonzero = ops.logical_and(ops.greater(weight_norm, 0),
                                           ops.greater(grad_norm, 0))
            local_lr = ops.where(both_nonzero, trust_ratio, ops.ones_like(trust_ratio))
            step = learning_rate * local_lr * (gradient + weight_decay * variable)
        else:
            step = learning_rate * (gradient + weight_decay * variable)
        self.assign(velocity, ops.cast(self.momentum, dtype) * velocity + step)
        self.assign_sub(variable, velocity)

    def _apply_weight_decay(self, variables):
        # The base class would add Keras' decoupled decay; LARS' decay lives in update_step.
        return

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        raise NotImplementedError("LARS excludes variables from adaptation and decay together: "
                                  "use exclude_variables or exclude_from_adaptation")

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay")
        config.update({
            "momentum": self.momentum,
            "weight_decay": self.lars_weight_decay,
            "trust_coefficient": self.trust_coefficient,
            "epsilon": self.epsilon,
            "exclude_vectors": self.exclude_vectors,
            "exclude_from_adaptation": list(self.exclude_from_adaptation),
        })
        return config
