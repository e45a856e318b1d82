"""Conservative (proximal) training (Keskar et al. 2017, appendix E.2, after Li et al. 2014; seed 003).

Each outer step approximately solves the proximal sub-problem on the current batch B,

    x_{k+1} ≈ argmin_x  F(x) = f_B(x) + (λ/2) ‖x − x_k‖²,

by K iterations of the run's own optimizer on F, from x_k: x_{k+1} is the K-th iterate, whatever the optimizer
(Keskar et al. solve the sub-problem inexactly with a few iterations of Adam, their large-batch optimizer). The
optimizer's state carries over, as in any run of it: momentum, Adam's moments and its step counter advance K times
per batch, so learning-rate schedules are built on K optimizer steps per batch (the trainer does this) and keep
their boundaries in epochs. Under plain SGD the inner path is x_{j+1} = x_j − η[∇f_B(x_j) + λ(x_j − x_k)].
f_B includes coupled weight decay; decoupled decay and LARS' decay act inside each of the K optimizer steps, and
`global_clipnorm` clips each inner gradient. K = 1 is the plain step.

Each inner gradient is a replica's share of the global batch's (Keras sums the shares across replicas inside
`optimizer.apply`), so every replica follows the same inner path and the result equals one device on the global
batch. Batch-norm moving statistics update once per batch, from the pass at x_k.

Keskar et al. use K = 3 and λ = 1e-3; the seed text stops before those values, so the defaults follow the
published paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfregimes.steps.plain import clip_global_norm_across_replicas, global_norm, num_replicas
from tfregimes.steps.regularized import RegularizedModel, values_of


class ProximalModel(RegularizedModel):
    """Conservative training. Logs `proximal_distance`, ‖x_K − x_k‖, how far a batch moved the weights.

    proximal_lambda: λ, the weight of the proximal term (0 gives K optimizer steps on the same batch).
    proximal_steps: K, optimizer iterations on the sub-problem per batch (each one forward and backward pass).

    Outside the regularizer's window a batch takes one plain optimizer step, and the step counter is advanced by
    K − 1 more so that the schedule stays on epochs (Adam's bias correction reads that counter too: (1 − β^t)
    differs from the plain run's only while β^t is not negligible, i.e. in the first few hundred steps). The
    number of optimizer calls is fixed when a step is traced, so switching the window retraces the step.
    """

    extra_metric_names = ("proximal_distance",)

    def __init__(self, network: keras.Model, *, weight_decay: float = 0.0,
                 decay_variables: Sequence[keras.Variable] = (), proximal_lambda: float = 1e-3,
                 proximal_steps: int = 3, **kwargs):
        if proximal_lambda < 0:
            raise ValueError(f"proximal_lambda must be >= 0, got {proximal_lambda}")
        if int(proximal_steps) < 1:
            raise ValueError(f"proximal_steps must be >= 1, got {proximal_steps}")
        super().__init__(network, weight_decay=weight_decay, decay_variables=decay_variables, **kwargs)
        self.lam = float(proximal_lambda)
        self.steps = int(proximal_steps)
        self._traced_active = True  # What the traced step does; kept equal to `regularizer_active`.

    @property
    def optimizer_steps_per_batch(self) -> int:
        return self.steps

    def set_regularizer_active(self, active: bool) -> None:
        super().set_regularizer_active(active)
        if bool(active) != self._traced_active:
            self._traced_active = bool(active)
            if self.train_function is not None:
                self.make_train_function(force=True)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("RegimeModel does not support sample weights")
        if not self._traced_active or self.steps == 1:
            self.track({"proximal_distance": tf.constant(0.0)}, tf.shape(x)[0])
            logs = super().train_step(data)  # The plain step.
            if self.steps > 1:
                self.optimizer.iterations.assign_add(self.steps - 1)
            return logs

        origin, state = self.current_values()
        is_float = [s.dtype.is_floating for s in state]
        coefficient = self.lam / num_replicas()  # Each replica adds its share of the global batch's term.
        step_state = state
        weights = origin
        for inner_step in range(self.steps):  # Unrolled: K is small, and optimizer.apply synchronizes replicas.
            scale = self.loss_scale()
            loss, logits, new_state, gradients = self.plain_gradients(x, y, weights, step_state, scale)
            if inner_step == 0:
                first_loss, first_logits, first_state = loss, logits, new_state
            factor = scale * coefficient
            gradients = [g + tf.cast(factor, g.dtype) * (w - w0) for g, w, w0 in zip(gradients, weights, origin)]
            if self.global_clipnorm:
                gradients = clip_global_norm_across_replicas(gradients, self.global_clipnorm * scale)
            self.optimizer.apply(gradients, self.trainable_variables)
            # Seed state (dropout) advances every pass; moving statistics come from the pass at x_k alone.
            step_state = [o if f else n for o, n, f in zip(state, new_state, is_float)]
            weights = values_of(self.network.trainable_variables)
        self.assign_state([s if f else n for s, n, f in zip(first_state, step_state, is_float)])
        distance = global_norm([w - w0 for w, w0 in zip(weights, origin)])
        self.track({"proximal_distance": distance}, tf.shape(x)[0])
        return self.step_logs(x, y, first_loss, first_logits)
