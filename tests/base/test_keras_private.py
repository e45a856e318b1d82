"""tfregimes.base.keras_private against the installed Keras: each private name still exists and does what the
module says, each overridden hook is still called by Keras, and no other module touches a Keras private name."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import keras
import numpy as np
import pytest

from tfregimes.base import keras_private
from tfregimes.steps.plain import RegimeModel
from tfregimes.training import recording

PACKAGE = Path(keras_private.__file__).resolve().parents[1]
KERAS_SOURCE = Path(inspect.getfile(keras.src)).parent


def _network() -> keras.Model:
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    normalized = keras.layers.BatchNormalization(name="bn")(hidden)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(normalized))


def _fitted(gradient_accumulation_steps: int | None = None, callbacks=()):
    keras.utils.set_random_seed(0)
    network = _network()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, gradient_accumulation_steps=gradient_accumulation_steps)
    network.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.default_rng(0).normal(size=(32, 3)).astype("float32"), np.arange(32) % 2
    history = network.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False, callbacks=list(callbacks))
    return network, optimizer, schedule, history


def test_step_count_counts_micro_batches_where_iterations_counts_updates():
    _, optimizer, _, _ = _fitted(gradient_accumulation_steps=2)
    assert int(keras_private.optimizer_step_count(optimizer)) == 4  # 32 examples / 8 per batch.
    assert int(optimizer.iterations) == 2


def test_optimizer_schedule_is_the_object_it_was_built_with():
    _, optimizer, schedule, _ = _fitted()
    assert keras_private.optimizer_schedule(optimizer) is schedule
    assert not isinstance(optimizer.learning_rate, keras.optimizers.schedules.LearningRateSchedule)


def test_variable_index_and_key_find_each_variables_slot():
    network, optimizer, _, _ = _fitted()
    variables = network.trainable_variables
    assert [keras_private.optimizer_variable_index(optimizer, v) for v in variables] == list(range(len(variables)))
    for variable in variables:
        assert optimizer.momentums[keras_private.optimizer_variable_index(optimizer, variable)].shape == variable.shape
    assert len({keras_private.optimizer_variable_key(optimizer, v) for v in variables}) == len(variables)


def test_loss_tracker_is_the_logged_loss():
    network, _, _, history = _fitted()
    tracker = keras_private.loss_tracker(network)
    assert isinstance(tracker, keras.metrics.Mean)
    assert float(tracker.result()) == pytest.approx(history.history["loss"][-1])


def test_symbolic_build_builds_model_and_optimizer():
    model = RegimeModel(_network())
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(True))
    assert not model.optimizer.built
    keras_private.symbolic_build(model, (np.zeros((2, 3), "float32"), np.zeros((2,), "int64")))
    assert model.optimizer.built and model.built


def test_graph_consumers_keep_to_the_models_own_graph():
    network = _network()
    hidden, bn = network.get_layer("hidden"), network.get_layer("bn")
    other = keras.Model(network.input, keras.layers.Dense(5)(hidden.output))  # A second call site of `hidden`.
    assert keras_private.graph_consumers(hidden, network) == [bn]
    assert [layer.units for layer in keras_private.graph_consumers(hidden, other)] == [5]
    assert keras_private.graph_consumers(network.get_layer("logits"), network) == []
    assert keras_private.is_functional(network) and not keras_private.is_functional(RegimeModel(network))


def test_functional_graph_of_functional_sequential_and_subclassed_models():
    network = _network()
    assert keras_private.functional_graph(network) is network
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"),
                                   keras.layers.BatchNormalization(name="bn")])
    graph = keras_private.functional_graph(sequential)
    assert keras_private.graph_consumers(sequential.get_layer("hidden"), graph) == [sequential.get_layer("bn")]
    assert keras_private.functional_graph(RegimeModel(network)) is None


def test_tensorboard_writer_and_rate(tmp_path):
    callback = keras.callbacks.TensorBoard(log_dir=str(tmp_path), write_steps_per_second=True)
    _fitted(callbacks=[callback])
    for split in ("train", "val"):
        assert hasattr(keras_private.tensorboard_writer(callback, split), "as_default")
    assert keras_private.tensorboard_writer(callback, "train") is not keras_private.tensorboard_writer(callback, "val")
    assert keras_private.tensorboard_steps_per_second(callback) > 0


OUR_OVERRIDES = {(keras.Model, "_maybe_symbolic_build"): RegimeModel,
                 (keras.callbacks.TensorBoard, "_collect_learning_rate"): recording.TensorBoard,
                 (keras.callbacks.TensorBoard, "_log_epoch_metrics"): recording.TensorBoard}


@pytest.mark.parametrize("hook", list(keras_private.OVERRIDDEN_HOOKS), ids=lambda hook: hook[1])
def test_each_overridden_hook_exists_with_our_signature_and_keras_calls_it(hook):
    keras_class, name = hook
    ours = OUR_OVERRIDES[hook]
    assert name in vars(ours), f"{ours.__name__} no longer overrides {name}"
    theirs = getattr(keras_class, name, None)
    assert callable(theirs), f"Keras {keras.__version__} renamed or removed {keras_class.__name__}.{name}"
    assert list(inspect.signature(theirs).parameters) == list(inspect.signature(vars(ours)[name]).parameters)
    callers = [path for path in KERAS_SOURCE.rglob("*.py") if f"self.{name}(" in path.read_text()]
    assert callers, f"Keras {keras.__version__} no longer calls {name}: the override would be silently ignored"
    assert set(OUR_OVERRIDES) == set(keras_private.OVERRIDDEN_HOOKS)


def keras_private_names() -> set[str]:
    """Single-underscore attributes of built Keras models, layers, optimizers and callbacks."""
    network, optimizer, _, _ = _fitted()
    objects = [network, network.get_layer("hidden"), network.get_layer("bn"), optimizer,
               keras.callbacks.TensorBoard(), keras.callbacks.Callback(), keras.metrics.Mean()]
    names = {name for obj in objects for name in dir(obj) if name.startswith("_") and not name.startswith("__")}
    return names


def private_keras_uses(sources: dict[str, str], private_names: set[str]) -> list[str]:
    """`path line: what` for each use of a Keras private name or of keras.src outside keras_private. Names our own
    classes assign (`self._variables = ...` in a callback) are ours, not Keras'."""
    allowed = {name for _, name in keras_private.OVERRIDDEN_HOOKS}
    for source in sources.values():
        allowed |= {target.attr for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id == "self"}
    uses = []
    for path, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras.src"):
                uses.append(f"{path} {node.lineno}: from {node.module}")
            elif isinstance(node, ast.Import) and any(a.name.startswith("keras.src") for a in node.names):
                uses.append(f"{path} {node.lineno}: import keras.src")
            elif isinstance(node, ast.Attribute) and node.attr in private_names and node.attr not in allowed:
                uses.append(f"{path} {node.lineno}: .{node.attr}")
    return uses


def test_no_module_but_keras_private_touches_keras_internals():
    names = keras_private_names()
    assert {"_loss_tracker", "_iterations", "_outbound_nodes", "_train_writer"} <= names
    sources = {str(path.relative_to(PACKAGE.parent)): path.read_text() for path in PACKAGE.rglob("*.py")
               if path.name != "keras_private.py"}
    assert private_keras_uses(sources, names) == []
    planted = {"tfregimes/x.py": "def f(model, opt):\n    from keras.src import ops\n    return model._loss_tracker\n"}
    assert private_keras_uses(planted, names) == ["tfregimes/x.py 2: from keras.src",
                                                  "tfregimes/x.py 3: ._loss_tracker"]
