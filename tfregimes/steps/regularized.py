"""What the regularized steps share: stateless evaluation at other weights, sub-batches, the on/off flag, the clip.

Every regime evaluates the network at weights other than its variables' (w − αg, w + ε, inner iterates) with
`network.stateless_call`, so nothing is copied or assigned back and forth. Losses are Keras' per-replica losses
(`compute_loss`, already divided by the replica count), so summing gradients over replicas, as the optimizer does,
gives the gradient of the global batch mean. Gradients are of the loss times the optimizer's loss scale (1 unless
mixed precision scales it) and are unscaled only where a regime needs their true size (a perturbation, an inner
step, a clip); the optimizer unscales what the step returns.

Non-trainable state (batch-norm moving statistics, dropout seed state) is threaded through explicitly: a pass at
perturbed weights reuses its unperturbed twin's input state (same dropout mask) and its new state is dropped; the
new moving statistics of M sub-batch passes at w are averaged into one update, the one a full-batch pass makes
(exactly for means, up to the between-sub-batch spread for variances).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from tfregimes.steps.plain import RegimeModel, num_replicas

Tensors = list[tf.Tensor]


def values_of(variables: Sequence[keras.Variable]) -> Tensors:
    return [tf.convert_to_tensor(v) for v in variables]


def split_batch(tensor: tf.Tensor, parts: int) -> tf.Tensor:
    """[B, ...] -> [parts, B / parts, ...], failing clearly when B is not a multiple of `parts`."""
    batch = tensor.shape[0]
    if batch is not None and batch % parts:
        raise ValueError(f"the per-replica batch of {batch} examples cannot be split into {parts} equal "
                         f"sub-batches; choose a batch size that is a multiple of {parts} × replicas")
    return tf.reshape(tensor, tf.concat([[parts, -1], tf.shape(tensor)[1:]], axis=0))


class RegularizedModel(RegimeModel):
    """A `RegimeModel` whose `compute_gradients` evaluates the network statelessly; base of the regularizers.

    `regularizer_active` (a tf.Variable, True by default) switches the regularizer off, e.g. outside an epoch window
    (`RegularizerWindow`); off, a step is the plain step. It is not a Keras weight, so checkpoints of every regime
    have the same layout. Subclasses set `extra_metric_names` to the trackers they log each epoch (training only).
    """

    extra_metric_names: tuple[str, ...] = ()

    def __init__(self, network: keras.Model, *, weight_decay: float = 0.0,
                 decay_variables: Sequence[keras.Variable] = (), **kwargs):
        super().__init__(network, weight_decay=weight_decay, decay_variables=decay_variables, **kwargs)
        self.regularizer_active = tf.Variable(True, trainable=False, name="regularizer_active")
        self._decayed = frozenset(id(v) for v in self.decay_variables)
        self.extra_trackers = {name: keras.metrics.Mean(name=name) for name in self.extra_metric_names}

    def set_regularizer_active(self, active: bool) -> None:
        """Switches the regularizer on or off (`RegularizerWindow` calls this at each epoch's start)."""
        self.regularizer_active.assign(bool(active))

    # -- evaluation at arbitrary weights ---------------------------------------------------------------------

    def current_values(self) -> tuple[Tensors, Tensors]:
        """(trainable, non-trainable) values of the network's variables, in the network's order."""
        if [id(v) for v in self.trainable_variables] != [id(v) for v in self.network.trainable_variables]:
            raise ValueError("the regime model's trainable variables must be exactly its network's")
        return values_of(self.network.trainable_variables), values_of(self.network.non_trainable_variables)

    def loss_scale(self) -> tf.Tensor:
        """The optimizer's current loss-scale factor (1 without mixed-precision loss scaling)."""
        return tf.cast(self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)

    def stateless_loss(self, weights: Tensors, state: Tensors, x, y):
        """(per-replica loss as Keras scales it, logits, new non-trainable state) at `weights`."""
        logits, new_state = self.network.stateless_call(weights, state, x, training=True)
        return self.compute_loss(x=x, y=y, y_pred=logits, training=True), logits, list(new_state)

    def loss_and_gradients(self, weights: Tensors, state: Tensors, x, y, scale: tf.Tensor):
        """(loss, logits, new state, ∇_weights of scale·loss) at `weights`; unused weights get zero gradients."""
        with tf.GradientTape() as tape:
            tape.watch(weights)
            loss, logits, new_state = self.stateless_loss(weights, state, x, y)
            scaled = loss * tf.cast(scale, loss.dtype)
        gradients = tape.gradient(scaled, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return loss, logits, new_state, gradients

    def decay_gradients(self, weights: Tensors) -> Tensors:
        """∇ of `weight_decay_penalty()` at `weights`: λ/n·w for the decayed weights, 0 for the others."""
        coefficient = self.weight_decay / num_replicas()
        return [w * tf.cast(coefficient, w.dtype) if id(v) in self._decayed else tf.zeros_like(w)
                for v, w in zip(self.network.trainable_variables, weights)]

    def logits_dtype(self) -> tf.DType:
        outputs = getattr(self.network, "outputs", None)
        return tf.as_dtype(outputs[0].dtype if outputs else self.network.compute_dtype)

    def assign_state(self, state: Sequence[tf.Tensor]) -> None:
        for variable, value in zip(self.network.non_trainable_variables, state):
            variable.assign(value)

    # -- sub-batches -----------------------------------------------------------------------------------------

    def sub_batch_loop(self, parts: int, x, y, state: Tensors, body: Callable, num_gradients: int,
                       num_scalars: int):
        """Runs `body` on each of `parts` equal sub-batches in a tf.while_loop (traced once, whatever `parts`).

        `body(x_i, y_i, state_i) -> (list of `num_gradients` gradient lists, list of `num_scalars` scalars,
        logits_i, new_state_i)`. Returns (gradient lists averaged over sub-batches, scalars averaged, logits of the
        whole batch in order, the merged new state: floating-point state averaged as an update, the rest (seed
        state) chained from one sub-batch to the next so each draws fresh randomness).
        """
        xs, ys = split_batch(x, parts), split_batch(y, parts)
        is_float = [s.dtype.is_floating for s in state]
        logits_dtype = self.logits_dtype()

        def step(i, gradient_sums, scalar_sums, logits_array, state_delta_sum, chained_state):
            state_i = [original if floating else chained
                       for original, chained, floating in zip(state, chained_state, is_float)]
            gradient_lists, scalars, logits, new_state = body(xs[i], ys[i], state_i)
            gradient_sums = [[s + g for s, g in zip(sums, grads)] for sums, grads in zip(gradient_sums, gradient_lists)]
            scalar_sums = [s + tf.cast(v, s.dtype) for s, v in zip(scalar_sums, scalars)]
            state_delta_sum = [d + (n - o) if floating else d
                               for d, n, o, floating in zip(state_delta_sum, new_state, state, is_float)]
            chained_state = [c if floating else n for c, n, floating in zip(chained_state, new_state, is_float)]
            logits_array = logits_array.write(i, tf.cast(logits, logits_dtype))
            return i + 1, gradient_sums, scalar_sums, logits_array, state_delta_sum, chained_state

        initial = (tf.constant(0),
                   [[tf.zeros(v.shape, v.dtype) for v in self.network.trainable_variables]
                    for _ in range(num_gradients)],
                   [tf.constant(0.0) for _ in range(num_scalars)],
                   tf.TensorArray(logits_dtype, size=parts, infer_shape=True),
                   [tf.zeros_like(s) if f else tf.zeros([], s.dtype) for s, f in zip(state, is_float)],
                   list(state))
        # Iterations share no data but the running sums, so several run at once: sub-batch i + 1's pass at w
        # overlaps sub-batch i's perturbed pass (strictly sequential, a Fisher step took ~35% longer on 2 cores).
        _, gradient_sums, scalar_sums, logits_array, state_delta_sum, chained_state = tf.while_loop(
            lambda i, *_: i < parts, step, initial, maximum_iterations=parts, parallel_iterations=parts)
        mean_gradients = [[g / tf.cast(parts, g.dtype) for g in sums] for sums in gradient_sums]
        mean_scalars = [s / parts for s in scalar_sums]
        logits = logits_array.stack()
        logits = tf.reshape(logits, tf.concat([[-1], tf.shape(logits)[2:]], axis=0))
        new_state = [o + d / tf.cast(parts, d.dtype) if floating else c
                     for o, d, c, floating in zip(state, state_delta_sum, chained_state, is_float)]
        return mean_gradients, mean_scalars, logits, new_state

    # -- plain step, metrics ---------------------------------------------------------------------------------

    def plain_gradients(self, x, y, weights: Tensors, state: Tensors, scale: tf.Tensor):
        """The plain step (`RegimeModel.compute_gradients`), statelessly: (loss, logits, new state, gradients)."""
        loss, logits, new_state, gradients = self.loss_and_gradients(weights, state, x, y, scale)
        decay = self.decay_gradients(weights)
        return loss, logits, new_state, [g + d * tf.cast(scale, d.dtype) for g, d in zip(gradients, decay)]

    def track(self, values: dict[str, tf.Tensor], batch_size) -> None:
        """Adds this step's per-replica values (undivided by the replica count) to the epoch's trackers."""
        for name, value in values.items():
            self.extra_trackers[name].update_state(value, sample_weight=batch_size)

    def test_step(self, data):
        logs = super().test_step(data)
        return {name: value for name, value in logs.items() if name not in self.extra_trackers}
