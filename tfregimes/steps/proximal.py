"""Conservative (proximal) training (Keskar et al. 2017, appendix E.2, after Li et al. 2014; seed 003).

Each outer step approximately solves the proximal sub-problem on the current batch B,

    x_{k+1} ≈ argmin_x  f_B(x) + (λ/2) ‖x − x_k‖²,

with K gradient steps from x_k at the optimizer's current learning rate η:
x_{j+1} = x_j − η [∇f_B(x_j) + λ (x_j − x_k)]. The optimizer then receives the pseudo-gradient
Σ_j [∇f_B(x_j) + λ (x_j − x_k)] = (x_k − x_K)/η, so plain SGD lands exactly on x_K, and momentum or Adam treat the
proximal displacement as their gradient (the sub-problem composes with any optimizer). K = 1 is the plain step.
f_B includes weight decay. The inner gradients are all-reduced, so every replica follows the same inner path and the
result equals single-device training on the global batch.

Keskar et al. solve the sub-problem with a few (3) inner iterations and λ = 1e-3; the seed text stops before those
values, so the defaults follow the published paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfregimes.steps.plain import global_norm, num_replicas
from tfregimes.steps.regularized import RegularizedModel


class ProximalModel(RegularizedModel):
    """Conservative training. Logs `proximal_distance`, ‖x_K − x_k‖, the length of the inner path's chord.

    proximal_lambda: λ, the weight of the proximal term (0 gives K plain steps on the same batch).
    proximal_steps: K, inner gradient steps per batch (each one forward and backward pass).

    Inner steps synchronize the replicas, which MirroredStrategy cannot do inside tf.cond, so outside the
    regularizer's window the step still makes K passes and then uses the first one's gradient (the plain step).
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

    def global_gradients(self, weights, state, x, y, scale):
        """(loss, logits, new state, true gradient of f over the GLOBAL batch at `weights`)."""
        loss, logits, new_state, gradients = self.loss_and_gradients(weights, state, x, y, scale)
        decay = self.decay_gradients(weights)
        gradients = [g / tf.cast(scale, g.dtype) + d for g, d in zip(gradients, decay)]
        if num_replicas() > 1:  # Per-replica losses are divided by n, so the sum is the global mean's gradient.
            gradients = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        return loss, logits, new_state, gradients

    def compute_gradients(self, x, y):
        origin, state = self.current_values()
        scale = self.loss_scale()
        learning_rate = tf.cast(self.optimizer.learning_rate, tf.float32)  # The rate of the step being taken.
        is_float = [s.dtype.is_floating for s in state]

        iterate, step_state = origin, state
        pseudo_gradient = [tf.zeros_like(w) for w in origin]
        for inner_step in range(self.steps):  # Unrolled: K is small, and the all-reduce cannot sit in a loop.
            loss, logits, new_state, gradients = self.global_gradients(iterate, step_state, x, y, scale)
            if inner_step == 0:
                first_loss, first_logits, first_state, first_gradients = loss, logits, new_state, gradients
            proximal = [g + self.lam * (x_j - x_k) for g, x_j, x_k in zip(gradients, iterate, origin)]
            pseudo_gradient = [s + p for s, p in zip(pseudo_gradient, proximal)]
            iterate = [x_j - learning_rate * p for x_j, p in zip(iterate, proximal)]
            # Moving statistics update once, from the pass at x_k; seed state advances every pass.
            step_state = [o if f else n for o, n, f in zip(state, new_state, is_float)]

        active = tf.convert_to_tensor(self.regularizer_active)
        chosen = [tf.where(active, p, g) for p, g in zip(pseudo_gradient, first_gradients)]
        self.assign_state([s if f else n for s, n, f in zip(first_state, step_state, is_float)])
        distance = tf.where(active, learning_rate * global_norm(pseudo_gradient), 0.0)
        self.track({"proximal_distance": distance}, tf.shape(x)[0])
        # Every replica holds the same global pseudo-gradient; the optimizer sums the replicas' shares.
        share = tf.cast(scale, tf.float32) / num_replicas()
        return first_loss, first_logits, [g * tf.cast(share, g.dtype) for g in chosen]
