"""Every use of Keras' private internals, in one place, each with the reason there is no public way.

Names with a leading underscore and `keras.src` may change in any Keras release. tfregimes reads them only through
the functions below, and overrides only the private hooks listed in OVERRIDDEN_HOOKS;
`tests/base/test_keras_private.py` checks each one against the installed Keras (so an upgrade that renames one
fails there, by name) and that no other module touches a Keras private name. Checked with Keras 3.10 to 3.15.
"""

from __future__ import annotations

import sys
from typing import Any

import keras
import numpy as np
from keras.src.ops.function import make_node_key  # No public name: the key of a call site in a functional graph.
from keras.src.saving import saving_lib  # No public name: the walk `save_weights` makes, and its HDF5 store.

# Private methods that tfregimes' subclasses override, with why; the test checks that Keras still calls them.
OVERRIDDEN_HOOKS: dict[tuple[type, str], str] = {
    (keras.Model, "_maybe_symbolic_build"):
        "Keras builds metrics on a batch it first reduces across replicas, which fails under "
        "MultiWorkerMirroredStrategy (keras-team/keras#20585); tfregimes.steps.plain builds on one replica's batch.",
    (keras.callbacks.TensorBoard, "_collect_learning_rate"):
        "Keras logs the optimizer's rate of the NEXT step; tfregimes.training.recording logs the last step's rate.",
    (keras.callbacks.TensorBoard, "_log_epoch_metrics"):
        "Keras writes each epoch scalar with its own eager call (~0.5 ms each); tfregimes.training.recording writes "
        "them in one compiled call (tfregimes.base.scalars).",
}


# --- Optimizers -------------------------------------------------------------------------------------------------
def optimizer_step_count(optimizer: keras.optimizers.Optimizer) -> Any:
    """Every micro-batch step, also under gradient accumulation, where the public `optimizer.iterations` counts
    only the applied updates; it is the count learning-rate schedules read."""
    return optimizer._iterations


def optimizer_schedule(optimizer: keras.optimizers.Optimizer) -> Any:
    """The schedule object (or variable) the optimizer was built with: the public `learning_rate` property only
    returns the schedule's current value."""
    return optimizer._learning_rate


def optimizer_variable_index(optimizer: keras.optimizers.Optimizer, variable: keras.Variable) -> int:
    """The index of `variable` in the optimizer's per-variable slots (momentums, velocities): Keras' own
    optimizers look slots up this way in `update_step`, and there is no public lookup."""
    return optimizer._get_variable_index(variable)


def optimizer_variable_key(optimizer: keras.optimizers.Optimizer, variable: keras.Variable) -> str:
    """The key Keras' optimizers identify a variable by (also in `exclude_from_weight_decay`)."""
    return optimizer._var_key(variable)


# --- Models -----------------------------------------------------------------------------------------------------
def loss_tracker(model: keras.Model) -> keras.metrics.Mean:
    """The `loss` metric of `fit`'s logs: a custom `train_step` that does not call `compute_loss` must update it
    itself, as Keras' own `train_step` does."""
    return model._loss_tracker


def symbolic_build(model: keras.Model, data_batch: Any) -> None:
    """What Keras' `_maybe_symbolic_build` does once it has a batch: build the model, its metrics and optimizer."""
    model._symbolic_build(data_batch=data_batch)


def is_functional(model: keras.Model) -> bool:
    """Whether `model` has a functional graph (its calls to its layers are recorded as nodes)."""
    return hasattr(model, "_nodes")


def functional_graph(model: keras.Model) -> keras.Model | None:
    """The functional model that holds `model`'s graph: `model` itself when functional; for a built
    `keras.Sequential`, the Functional it keeps privately (`_functional`, no public accessor); None for a
    subclassed model (no graph) or a Sequential not built yet."""
    if is_functional(model):
        return model
    inner = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else None
    return inner if inner is not None and is_functional(inner) else None


def graph_consumers(layer: keras.layers.Layer, model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of `model`'s functional graph that take `layer`'s output as input. Keras has no public graph
    traversal; a layer's outbound nodes include calls in other models built from the same layers, so only the
    nodes of `model`'s own graph are kept."""
    consumers = []
    for node in layer._outbound_nodes:
        operation = node.operation
        if make_node_key(operation, operation._inbound_nodes.index(node)) in model._nodes:
            consumers.append(operation)
    return consumers


# --- Weights files ----------------------------------------------------------------------------------------------
class _LayoutStore(saving_lib.H5IOStore):
    """Records the groups `save_weights` makes, with the object whose `save_own_variables` fills each, instead of
    writing them. A subclass because `_save_state` accepts only Keras' own stores; its file-opening constructor is
    not called."""

    def __init__(self):  # super().__init__ would open an HDF5 file.
        self.mode = "w"
        self.groups: list[tuple[str, dict | None, Any]] = []

    def __bool__(self):
        return True

    def make(self, path, metadata=None):
        # `_save_state(saveable, ...)` calls `saveable.save_own_variables(weights_store.make(...))`: its caller's
        # `saveable` is the owner of the group.
        owner = sys._getframe(1).f_locals.get("saveable")
        if owner is None or not hasattr(owner, "save_own_variables"):
            raise RuntimeError(f"Keras {keras.__version__}'s saving_lib._save_state no longer calls store.make with "
                               "the saveable in scope: tfregimes.base.keras_private.weights_layout needs updating")
        self.groups.append((path, metadata, owner))
        return {}  # What the owner writes now is discarded: `read_weights` asks it again at each checkpoint.


def weights_layout(model: keras.Model) -> list[tuple[str, dict | None, Any]]:
    """The groups `model.save_weights` writes to a `.weights.h5` file (model and optimizer), in its order, as (path,
    metadata, owner): `owner.save_own_variables(store)` fills the group. Keras' public saving walks the model and
    writes in one call; the walk alone takes tens of ms of Python on a small model, so the checkpoint writer walks
    once and, at each checkpoint, only asks each owner for its values (`read_weights`) and writes them in the
    background (`write_weights`)."""
    store = _LayoutStore()
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    return store.groups


def write_weights(path: str, groups: list[tuple[str, dict | None, list[tuple[str, Any]]]]) -> None:
    """Writes `groups` (values as NumPy arrays) as `save_weights` writes them: the same HDF5 store, groups and
    datasets, so `model.load_weights` reads the file."""
    store = saving_lib.H5IOStore(path, mode="w")
    try:
        for group_path, metadata, entries in groups:
            store.make(group_path, metadata=metadata)
            for key, value in entries:
                store[key] = np.asarray(value)
    finally:
        store.close()


# --- TensorBoard ------------------------------------------------------------------------------------------------
def tensorboard_writer(callback: keras.callbacks.TensorBoard, split: str) -> Any:
    """The `tf.summary` writer Keras' TensorBoard opened for "train" or "val" (created lazily by Keras)."""
    return callback._train_writer if split == "train" else callback._val_writer


def summary_writer_resource(writer: Any) -> Any:
    """The resource handle of a `tf.summary` file writer (TensorFlow's, not Keras'; no public accessor): passed as an
    argument, one compiled summary function serves every writer, where one that captures a writer is traced again
    for each (Keras' TensorBoard opens new writers at every `fit`)."""
    return writer._resource


def tensorboard_steps_per_second(callback: keras.callbacks.TensorBoard) -> float:
    """The rate Keras' TensorBoard logs as `steps_per_second` with `write_steps_per_second=True`."""
    return callback._compute_steps_per_second()
