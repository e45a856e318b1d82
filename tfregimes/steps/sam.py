"""Sharpness-Aware Minimization (Foret et al. 2021), the flatness regularizer the others are compared against.

    ε = ρ g / ‖g‖ with g = ∇L(B, w);   step with ∇L(B, w + ε) from w.

m-sharpness (Foret et al. §4.1): with `sam_subbatches` = k, each of k equal sub-batches gets its own ascent
ε_j = ρ g_j/‖g_j‖ and the step uses the mean over j of ∇L(B_j, w + ε_j), i.e. m = B/k examples per ascent. Under
tf.distribute each replica ascends on its own examples (m is at most the per-replica batch), as in Foret et al.'s
data-parallel implementation. The ascent uses the data loss alone; weight decay enters the step at w, as in the
reference implementations.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfregimes.steps.plain import global_norm, num_replicas
from tfregimes.steps.regularized import RegularizedModel


class SAMModel(RegularizedModel):
    """SAM. Logs `sam_perturbed_loss`, the loss at w + ε (its excess over `loss` is the sharpness SAM penalizes).

    sam_rho: ρ, the radius of the ascent step (0.05 in Foret et al. for CIFAR).
    sam_subbatches: k, ascents per replica batch (m-sharpness with m = batch / k); 1: one ascent per replica.
    """

    extra_metric_names = ("sam_perturbed_loss",)

    def __init__(self, network: keras.Model, *, weight_decay: float = 0.0,
                 decay_variables: Sequence[keras.Variable] = (), sam_rho: float = 0.05, sam_subbatches: int = 1,
                 **kwargs):
        if sam_rho <= 0:
            raise ValueError(f"sam_rho must be positive, got {sam_rho}")
        if int(sam_subbatches) < 1:
            raise ValueError(f"sam_subbatches must be >= 1, got {sam_subbatches}")
        super().__init__(network, weight_decay=weight_decay, decay_variables=decay_variables, **kwargs)
        self.rho = float(sam_rho)
        self.subbatches = int(sam_subbatches)

    def compute_gradients(self, x, y):
        weights, state = self.current_values()
        scale = self.loss_scale()

        def sharpness_aware():
            return self.sharpness_aware_gradients(x, y, weights, state, scale)

        def plain():
            loss, logits, new_state, gradients = self.plain_gradients(x, y, weights, state, scale)
            return loss, loss, logits, new_state, gradients

        loss, perturbed_loss, logits, new_state, gradients = tf.cond(
            tf.convert_to_tensor(self.regularizer_active), sharpness_aware, plain)
        self.assign_state(new_state)
        self.track({"sam_perturbed_loss": perturbed_loss * num_replicas()}, tf.shape(x)[0])
        return loss, logits, gradients

    def sharpness_aware_gradients(self, x, y, weights, state, scale):
        """(L(w), L(w + ε), logits at w, new state, ∇L(w + ε) · scale + weight decay at w), per replica."""
        def sub_batch(x_i, y_i, state_i):
            loss, logits, new_state, gradients = self.loss_and_gradients(weights, state_i, x_i, y_i, scale)
            # Only the direction matters, so the loss scale and the replica count cancel.
            norm = global_norm(gradients)
            step = tf.math.divide_no_nan(tf.cast(self.rho, norm.dtype), norm)
            perturbed = [w + tf.stop_gradient(g * tf.cast(step, g.dtype)) for w, g in zip(weights, gradients)]
            # The same input state as at w: the same dropout mask at both points.
            perturbed_loss, _, _, perturbed_gradients = self.loss_and_gradients(
                perturbed, state_i, x_i, y_i, scale)
            return [perturbed_gradients], [loss, perturbed_loss], logits, new_state

        (at_perturbed,), (loss, perturbed_loss), logits, new_state = self.sub_batch_loop(
            self.subbatches, x, y, state, sub_batch, num_gradients=1, num_scalars=2)
        decay = self.decay_gradients(weights)
        gradients = [g + d * tf.cast(scale, d.dtype) for g, d in zip(at_perturbed, decay)]
        return loss, perturbed_loss, logits, new_state, gradients
