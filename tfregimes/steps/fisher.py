"""The Fisher-trace regularizer of Jia & Su 2020 (seed 004, §6, eq. 6, Algorithm 1).

    R_α(w) = 1/M Σ_i [L̃(B_i, w) − L̃(B_i, w − α g_i)],   g_i = ∇L̃(B_i, w) held constant,

which to first order is α · 1/M Σ_i ‖g_i‖² (§6), an estimate of α·tr(I(w)). A step minimizes L(B, w) + β R_α(w),
clips the total gradient's global norm at τ and hands it to any optimizer.

The loss term is the baseline's. L(B, w) is computed on the whole batch, as the plain step computes it, so batch
norm normalizes over the same examples in both and a "+regularizer vs baseline" comparison differs only by β R_α:
β = 0 is exactly the plain step, batch norm included (tested). Only R_α runs the network on sub-batches B_i, as
Algorithm 1 defines it (batch norm then sees B/M examples in those passes, like ghost batch norm).

M counts sub-batches of the GLOBAL batch: with n replicas each replica splits its share into M/n, so adding
devices does not change what is regularized (M must be a multiple of the replica count).

Cost. With g_i constant, ∇R_α = 1/M Σ_i [∇L(B_i, w) − ∇L(B_i, w − α g_i)]: one pass over the sub-batches at w (the
g_i) and one at the perturbed weights, plus the whole-batch pass for L(B, w): three forward-backward passes over the
batch. A network without moving statistics (no batch norm) skips that pass, since there the mean of the sub-batch
gradients is exactly ∇L(B, w); so does `fisher_batch_loss="subbatches"` with batch norm, taking L(B, w) as the mean
of the sub-batch losses (batch norm over B/M examples, like ghost batch norm): two passes, about 2/3 of the cost,
but β = 0 is then no longer the plain step. Two passes over the batch are the floor of Algorithm 1 either way.

L̃ uses one-hot labels ỹ (§3.1); the datasets here give hard integer labels, for which the compiled sparse
cross-entropy is L̃ itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfregimes.steps.plain import clip_global_norm_across_replicas, num_replicas
from tfregimes.steps.regularized import RegularizedModel


class FisherRegularizedModel(RegularizedModel):
    """Algorithm 1 of seed 004. Logs `fisher_penalty` (R_α) and `regularized_loss` (L + β R_α) each epoch.

    fisher_alpha: α of eq. 6 (the paper uses 1e-4 throughout).
    fisher_beta: β, the penalty's weight (the paper validates over 10–125).
    fisher_subbatches: M, sub-batches of the global batch (4, 8 or 16 in the paper); each replica takes M/n.
    clip_global_norm: τ, the global-norm clip of the total gradient (1, 5, 10 or 15 in the paper); 0 or None: no clip.
    fisher_batch_loss: with batch norm, where L(B, w) is computed: "whole" (the whole batch, as the plain step and
        Algorithm 1 line 8) or "subbatches" (the mean over the M sub-batch passes at w; one pass cheaper).
    """

    BATCH_LOSS_CHOICES = ("whole", "subbatches")

    extra_metric_names = ("fisher_penalty", "regularized_loss")

    def __init__(self, network: keras.Model, *, weight_decay: float = 0.0,
                 decay_variables: Sequence[keras.Variable] = (), fisher_alpha: float = 1e-4,
                 fisher_beta: float = 10.0, fisher_subbatches: int = 8, clip_global_norm: float | None = 10.0,
                 fisher_batch_loss: str = "whole", **kwargs):
        if fisher_alpha <= 0:
            raise ValueError(f"fisher_alpha must be positive, got {fisher_alpha}")
        if fisher_beta < 0:
            raise ValueError(f"fisher_beta must be >= 0, got {fisher_beta}")
        if int(fisher_subbatches) < 1:
            raise ValueError(f"fisher_subbatches must be >= 1, got {fisher_subbatches}")
        if clip_global_norm is not None and clip_global_norm < 0:
            raise ValueError(f"clip_global_norm must be >= 0 (0: no clip), got {clip_global_norm}")
        if fisher_batch_loss not in self.BATCH_LOSS_CHOICES:
            raise ValueError(f"fisher_batch_loss must be one of {', '.join(self.BATCH_LOSS_CHOICES)}, "
                             f"got {fisher_batch_loss!r}")
        super().__init__(network, weight_decay=weight_decay, decay_variables=decay_variables, **kwargs)
        self.alpha = float(fisher_alpha)
        self.beta = float(fisher_beta)
        self.subbatches = int(fisher_subbatches)
        self.clip_norm = float(clip_global_norm or 0.0)
        self.batch_loss = fisher_batch_loss

    def compute_gradients(self, x, y):
        weights, state = self.current_values()
        scale = self.loss_scale()
        active = tf.convert_to_tensor(self.regularizer_active)

        def regularized():
            return self.regularized_gradients(x, y, weights, state, scale)

        def plain():
            loss, logits, new_state, gradients = self.plain_gradients(x, y, weights, state, scale)
            return loss, tf.zeros_like(loss), logits, new_state, gradients

        loss, penalty, logits, new_state, gradients = tf.cond(active, regularized, plain)
        self.assign_state(new_state)
        if self.clip_norm:  # Algorithm 1, line 9; only while the regularizer is on.
            gradients = clip_global_norm_across_replicas(gradients, self.clip_norm * scale, active=active)
        replicas = num_replicas()
        self.track({"fisher_penalty": penalty * replicas,
                    "regularized_loss": (loss + self.beta * penalty) * replicas}, tf.shape(x)[0])
        return loss, logits, gradients

    def subbatches_per_replica(self) -> int:
        replicas = num_replicas()
        if self.subbatches % replicas:
            raise ValueError(f"fisher_subbatches ({self.subbatches}) counts sub-batches of the global batch and must "
                             f"be a multiple of the {replicas} replicas")
        return self.subbatches // replicas

    def regularized_gradients(self, x, y, weights, state, scale):
        """(L, R_α, logits, new state, ∇[L + β R_α + weight decay] · scale), losses per replica as Keras scales them."""
        # Keras divides each replica's loss by the replica count n; g_i is the sub-batch's own gradient.
        true_gradient_factor = tf.cast(num_replicas(), tf.float32) / scale
        is_float = [s.dtype.is_floating for s in state]
        whole_batch_pass = any(is_float) and self.batch_loss == "whole"

        def sub_batch(x_i, y_i, state_i):
            loss, logits, new_state, gradients = self.loss_and_gradients(weights, state_i, x_i, y_i, scale)
            g = [tf.stop_gradient(grad * true_gradient_factor) for grad in gradients]  # Algorithm 1, line 5
            perturbed = [w - self.alpha * g_w for w, g_w in zip(weights, g)]
            # Same input state as the pass at w: the same dropout mask, so the difference is the weights' alone.
            perturbed_loss, _, _, perturbed_gradients = self.loss_and_gradients(
                perturbed, state_i, x_i, y_i, scale)
            return [gradients, perturbed_gradients], [loss, loss - perturbed_loss], logits, new_state

        if whole_batch_pass:  # L(B, w) on the whole batch, as the baseline: batch norm over the same examples.
            loss, logits, full_state, grad_loss = self.loss_and_gradients(weights, state, x, y, scale)
            loop_state = [o if f else n for o, n, f in zip(state, full_state, is_float)]
        else:
            loop_state = state
        (at_w, at_perturbed), (sub_loss, penalty), sub_logits, sub_state = self.sub_batch_loop(
            self.subbatches_per_replica(), x, y, loop_state, sub_batch, num_gradients=2, num_scalars=2)
        if whole_batch_pass:  # Moving statistics from the whole-batch pass; seed state from the last pass.
            new_state = [n if f else c for n, c, f in zip(full_state, sub_state, is_float)]
        else:  # The mean of the sub-batch losses and gradients: exactly L(B, w)'s without batch statistics.
            loss, logits, new_state, grad_loss = sub_loss, sub_logits, sub_state, at_w
        decay = self.decay_gradients(weights)
        beta = self.beta
        # ∇L(B, w) + β ∇R_α = ∇L(B, w) + β mean_i [∇L(B_i, w) − ∇L(B_i, w − α g_i)]   (eq. 6 with g_i constant)
        gradients = [g_l + beta * (g_w - g_p) + d * tf.cast(scale, d.dtype)
                     for g_l, g_w, g_p, d in zip(grad_loss, at_w, at_perturbed, decay)]
        return loss, penalty, logits, new_state, gradients
