"""Tests of the model zoo: published parameter counts, ghost BN, scale invariance,
zero-init residual, weight-decay scopes, every model's train step and save/load, the listing."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from tfregimes.base.registry import UnknownNameError
from tfregimes.cli import models as listing_cli
from tfregimes.models import (
    MODEL_CARDS,
    MODELS,
    GhostBatchNormalization,
    ModelOptions,
    build_model,
    decay_variables,
    model_names,
)
from tfregimes.models.listing import count_parameters, describe_model, format_table
from tfregimes.models.published_params import PUBLISHED_PARAMS

# Registered models too slow for a per-model train step and save/load in this suite, each with
# the tiny variant of the same builder that stands in for it (checked below). The big ones'
# builds are still checked against published parameter counts.
STAND_INS = {
    "resnet20": "resnet8", "resnet32": "resnet8", "resnet44": "resnet8", "resnet56": "resnet8",
    "resnet110": "resnet8",
    "wrn": "wrn10_1", "wrn28_10": "wrn10_1", "wrn16_8": "wrn10_1", "wrn28_2": "wrn10_1",
    "densenet_bc": "densenet_bc_tiny", "vgg13_bn": "vgg5_bn", "vgg19_bn": "vgg5_bn",
    "resnet18": "resnet_tiny", "resnet50": "resnet_tiny",
    "scale_invariant_resnet18": "scale_invariant_resnet_tiny", "c4": "c2",
}
SMOKE_MODELS = [name for name in model_names() if name not in STAND_INS]
SMOKE_CLASSES = 3


def _trainable_count(model: keras.Model) -> int:
    return count_parameters(model)[1]


def _smoke_input_shape(name: str) -> tuple[int, ...]:
    """The model's own input shape, with images shrunk to at most 16x16 (32x32 for
    keras.applications' EfficientNet, which refuses smaller inputs)."""
    shape = MODEL_CARDS.get(name).input_shape
    side = 32 if name == "efficientnet_b0" else 16
    return shape if len(shape) == 1 or shape[0] <= side else (side, side, shape[-1])


def _loss_and_gradients(model, x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
            y, logits, from_logits=True))
    return loss, tape.gradient(loss, model.trainable_variables)


def test_registry_has_every_family_and_fails_loudly():
    expected = {"mlp", "cnn_small", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                "preact_resnet20", "wrn", "wrn28_10", "wrn16_8", "wrn28_2", "vgg13_bn",
                "vgg19_bn", "resnet18", "resnet50", "densenet_bc", "plain_cnn6", "f1", "f2",
                "c1", "c2", "c3", "c4", "scale_invariant_resnet18", "efficientnet_b0"}
    assert expected <= set(model_names())
    assert set(MODEL_CARDS.names()) == set(model_names())
    with pytest.raises(UnknownNameError, match="valid names: .*resnet20"):
        build_model("resnet21", input_shape=(32, 32, 3), num_classes=10)


def test_stand_ins_share_the_builder_of_the_model_they_replace():
    for heavy, tiny in STAND_INS.items():
        heavy_builder, tiny_builder = MODELS.get(heavy), MODELS.get(tiny)
        assert getattr(heavy_builder, "func", heavy_builder) is tiny_builder.func, heavy
        assert tiny not in STAND_INS


@pytest.mark.parametrize("entry", PUBLISHED_PARAMS, ids=lambda entry: entry.model)
def test_parameter_count_matches_publication(entry):
    model = build_model(entry.model, input_shape=entry.input_shape,
                        num_classes=entry.num_classes)
    count = _trainable_count(model)
    assert entry.matches(count), (count, entry)  # Exact, unless the publication rounded (then to its last digit).
    keras.backend.clear_session()


def test_mlp_and_small_cnn_parameter_counts_in_closed_form():
    flat = build_model("mlp", input_shape=(40,), num_classes=3,
                       options=ModelOptions(hidden_sizes=(16, 8)))
    assert flat.count_params() == (40 * 16 + 16) + (16 * 8 + 8) + (8 * 3 + 3)
    image = build_model("mlp", input_shape=(8, 8, 1), num_classes=10,
                        options=ModelOptions(hidden_sizes=(5,)))
    assert image.count_params() == (64 * 5 + 5) + (5 * 10 + 10)
    # conv 3x3x1x32, 3x3x32x32, 3x3x32x64 (no bias: BN follows), BN gamma/beta, dense 64 -> 10.
    cnn = build_model("cnn_small", input_shape=(28, 28, 1), num_classes=10)
    convs = 9 * 1 * 32 + 9 * 32 * 32 + 9 * 32 * 64
    assert _trainable_count(cnn) == convs + 2 * (32 + 32 + 64) + 64 * 10 + 10


# Keskar et al. 2017 (seed 003, appendix B) and the authors' network_zoo.py: the layouts, counted by hand.
def _bn(units):
    return 2 * units  # gamma, beta


def _dense(inputs, units, bias=False):
    return inputs * units + (units if bias else 0)


def _conv(kernel, channels_in, filters):
    return kernel * kernel * channels_in * filters  # No bias: BN follows.


def _keskar_shallow(classes):
    # Two [5x5 conv 64, BN, ReLU, 3x3/2 max-pool (same)] stages: 32 -> 16 -> 8, so 8*8*64 flattened features.
    convs = _conv(5, 3, 64) + _bn(64) + _conv(5, 64, 64) + _bn(64)
    return convs + _dense(8 * 8 * 64, 384) + _bn(384) + _dense(384, 192) + _bn(192) + _dense(192, classes, bias=True)


DEEP_FILTERS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)  # 13 convs, 5 pools: 32 -> 1.


def _keskar_deep(classes):
    convs = sum(_conv(3, c_in, c_out) + _bn(c_out) for c_in, c_out in zip((3,) + DEEP_FILTERS, DEEP_FILTERS))
    return convs + _dense(512, 512) + _bn(512) + _dense(512, classes, bias=True)


@pytest.mark.parametrize("name,input_shape,count", [
    ("f1", (28, 28, 1), _dense(784, 512) + 4 * _dense(512, 512) + 5 * _bn(512) + _dense(512, 10, bias=True)),
    ("f1_narrow", (28, 28, 1), _dense(784, 128) + 4 * _dense(128, 128) + 5 * _bn(128) + _dense(128, 10, bias=True)),
    ("f2", (360,), _dense(360, 512) + 6 * _dense(512, 512) + 7 * _bn(512) + _dense(512, 1973, bias=True)),
    ("c1", (32, 32, 3), _keskar_shallow(10)),
    ("c3", (32, 32, 3), _keskar_shallow(100)),
    ("c2", (32, 32, 3), _keskar_deep(10)),
    ("c4", (32, 32, 3), _keskar_deep(100)),
])
def test_keskar_networks_have_the_published_layout_exactly(name, input_shape, count):
    model = build_model(name, input_shape=input_shape, num_classes=MODEL_CARDS.get(name).num_classes)
    assert _trainable_count(model) == count
    dense_units = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    conv_filters = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    expected_dense = {"f1": [512] * 5 + [10], "f1_narrow": [128] * 5 + [10], "f2": [512] * 7 + [1973],
                      "c1": [384, 192, 10], "c3": [384, 192, 100],
                      "c2": [512, 10], "c4": [512, 100]}[name]
    assert dense_units == expected_dense
    assert conv_filters == {"c1": [64, 64], "c3": [64, 64], "c2": list(DEEP_FILTERS),
                            "c4": list(DEEP_FILTERS)}.get(name, [])
    keras.backend.clear_session()


def test_resnet_stem_choice_changes_only_the_stem_kernel():
    def trainable(stem):
        return _trainable_count(build_model("resnet_tiny", input_shape=(32, 32, 3),
                                            num_classes=10, options=ModelOptions(stem=stem)))
    # resnet_tiny's stem has 8 filters on 3 channels: 7x7 vs 3x3 kernels.
    assert trainable("imagenet") - trainable("cifar") == 8 * 3 * (49 - 9)
    assert trainable("auto") == trainable("cifar")  # 32x32 picks the CIFAR stem
    with pytest.raises(ValueError, match="stem"):
        ModelOptions(stem="tiny")


def test_options_a_model_does_not_read_are_errors_not_silently_ignored():
    with pytest.raises(ValueError, match="does not use the option.*dropout"):
        build_model("resnet8", input_shape=(32, 32, 3), num_classes=10,
                    options=ModelOptions(dropout=0.5))
    with pytest.raises(ValueError, match="wrn_depth"):  # the named variant fixes the depth
        build_model("wrn10_1", input_shape=(32, 32, 3), num_classes=10,
                    options=ModelOptions(wrn_depth=16))
    with pytest.raises(ValueError, match="zero_init_residual"):  # no BN closes a preact block
        build_model("preact_resnet20", input_shape=(32, 32, 3), num_classes=10,
                    options=ModelOptions(zero_init_residual=True))
    generic = build_model("wrn", input_shape=(32, 32, 3), num_classes=10,
                          options=ModelOptions(wrn_depth=10, wrn_width=1, dropout=0.3))
    named = build_model("wrn10_1", input_shape=(32, 32, 3), num_classes=10)
    assert generic.count_params() == named.count_params()
    assert any(isinstance(layer, keras.layers.Dropout) for layer in generic.layers)


def test_image_models_reject_flat_inputs():
    with pytest.raises(ValueError, match="image inputs"):
        build_model("resnet20", input_shape=(40,), num_classes=10)


def _set_random_affine(layer, rng):
    channels = layer.gamma.shape[0]
    layer.gamma.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
    layer.beta.assign(rng.normal(size=channels).astype("float32"))


def test_ghost_batch_norm_with_ghost_batch_equal_to_batch_is_batch_norm():
    rng = np.random.default_rng(0)
    x = (3.0 + 2.0 * rng.normal(size=(8, 4, 4, 3))).astype("float32")
    reference = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    reference.build(x.shape)
    _set_random_affine(reference, rng)
    for virtual_batch_size in (8, 64, None):  # 64 > batch: one ghost, the whole batch
        ghost = GhostBatchNormalization(virtual_batch_size, momentum=0.9, epsilon=1e-3)
        ghost.build(x.shape)
        ghost.gamma.assign(reference.gamma)
        ghost.beta.assign(reference.beta)
        reference.moving_mean.assign(np.zeros(3, "float32"))
        reference.moving_variance.assign(np.ones(3, "float32"))
        np.testing.assert_allclose(ghost(x, training=True), reference(x, training=True),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ghost.moving_mean, reference.moving_mean, rtol=1e-6)
        np.testing.assert_allclose(ghost.moving_variance, reference.moving_variance, rtol=1e-5)
        np.testing.assert_allclose(ghost(x, training=False), reference(x, training=False),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(10, 3, 3, 2), (10, 2)], ids=["images", "features"])
def test_ghost_batch_norm_normalizes_each_slice_by_its_own_statistics(shape):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=shape) * rng.uniform(0.5, 3, shape[0]).reshape(
        (-1,) + (1,) * (len(shape) - 1)) + 5.0).astype("float32")
    epsilon, momentum = 1e-3, 0.9
    layer = GhostBatchNormalization(4, momentum=momentum, epsilon=epsilon)
    layer.build(x.shape)
    _set_random_affine(layer, rng)
    gamma, beta = layer.gamma.numpy(), layer.beta.numpy()
    axes = tuple(range(len(shape) - 1))
    slices = [x[0:4], x[4:8], x[8:10]]  # the last ghost batch is short
    means = [s.mean(axis=axes) for s in slices]
    variances = [s.var(axis=axes) for s in slices]
    expected = np.concatenate([(s - m) / np.sqrt(v + epsilon) * gamma + beta
                               for s, m, v in zip(slices, means, variances)])
    graph_call = tf.function(lambda inputs: layer(inputs, training=True),
                             input_signature=[tf.TensorSpec((None,) + shape[1:])])
    np.testing.assert_allclose(graph_call(x), expected, rtol=1e-4, atol=1e-4)
    # Moving statistics follow the average of the slices' statistics.
    moving_mean = (1 - momentum) * np.mean(means, axis=0)
    moving_variance = momentum + (1 - momentum) * np.mean(variances, axis=0)
    np.testing.assert_allclose(layer.moving_mean, moving_mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance, moving_variance, rtol=1e-5)
    inference = (x - moving_mean) / np.sqrt(moving_variance + epsilon) * gamma + beta
    np.testing.assert_allclose(layer(x, training=False), inference, rtol=1e-4, atol=1e-4)


def test_ghost_batch_size_option_swaps_every_batch_norm():
    model = build_model("resnet8", input_shape=(32, 32, 3), num_classes=10,
                        options=ModelOptions(ghost_batch_size=16))
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    ghosts = [layer for layer in model.layers if isinstance(layer, GhostBatchNormalization)]
    assert len(ghosts) == 7 and all(layer.virtual_batch_size == 16 for layer in ghosts)


def test_scale_invariant_resnet_loss_is_scale_invariant_and_gradient_scales_inversely():
    # seed 002 eq. 5 and 6: L(a x) = L(x) and grad L(a x) = grad L(x) / a for every a > 0.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 8, 8, 3)).astype("float32")
    y = np.arange(8) % 3
    # The invariance is exact as BN's epsilon -> 0; with the default 1e-5, features whose
    # variance within a 4-example ghost batch is ~1e-4 move the loss by ~1e-3 relative.
    options = ModelOptions(ghost_batch_size=4, bn_epsilon=1e-8)
    model = build_model("scale_invariant_resnet_tiny", input_shape=(8, 8, 3), num_classes=3,
                        options=options)
    assert not model.get_layer("logits").trainable
    loss, gradients = _loss_and_gradients(model, x, y)
    gradient = np.concatenate([np.ravel(g) for g in gradients])
    weights = [v.numpy() for v in model.trainable_variables]
    for alpha in (0.5, 3.0):
        for variable, weight in zip(model.trainable_variables, weights):
            variable.assign(alpha * weight)
        scaled_loss, scaled_gradients = _loss_and_gradients(model, x, y)
        scaled_gradient = np.concatenate([np.ravel(g) for g in scaled_gradients])
        assert float(scaled_loss) == pytest.approx(float(loss), rel=1e-5)
        np.testing.assert_allclose(scaled_gradient, gradient / alpha,
                                   atol=1e-4 * np.abs(gradient).max() / alpha)
    # The ordinary ResNet with a trainable dense head is not scale invariant.
    plain = build_model("resnet_tiny", input_shape=(8, 8, 3), num_classes=3)
    plain_loss, _ = _loss_and_gradients(plain, x, y)
    for variable in plain.trainable_variables:
        variable.assign(3.0 * variable)
    assert abs(float(_loss_and_gradients(plain, x, y)[0]) - float(plain_loss)) > 1e-2


def test_zero_init_residual_makes_every_bottleneck_block_its_shortcut():
    x = np.random.default_rng(3).normal(size=(4, 16, 16, 3)).astype("float32")
    for zero_init in (True, False):
        model = build_model("resnet_tiny", input_shape=(16, 16, 3), num_classes=10,
                            options=ModelOptions(zero_init_residual=zero_init))
        adds = [layer for layer in model.layers if layer.name.endswith("_add")]
        assert len(adds) == 2
        probe = keras.Model(model.input,
                            [t for add in adds for t in (*add.input, add.output)])
        outputs = probe(x, training=True)
        for shortcut, residual, block_sum in zip(*[iter(outputs)] * 3):
            if zero_init:  # the block adds exactly nothing to its shortcut
                np.testing.assert_array_equal(residual, np.zeros_like(residual))
                np.testing.assert_array_equal(block_sum, shortcut)
            else:
                assert np.abs(np.array(residual)).max() > 1e-3


def test_decay_variables_scopes():
    model = build_model("resnet8", input_shape=(32, 32, 3), num_classes=10,
                        options=ModelOptions(ghost_batch_size=8))
    assert decay_variables(model, "all") == list(model.trainable_variables)
    def kinds(scope):
        return sorted(v.path.rsplit("/", 1)[-1] for v in decay_variables(model, scope))
    # resnet8: 7 convs (stem + 3 blocks x 2), 7 ghost BNs, the dense kernel and bias.
    assert kinds("all") == ["beta"] * 7 + ["bias"] + ["gamma"] * 7 + ["kernel"] * 8
    assert kinds("exclude_bn") == ["bias"] + ["kernel"] * 8  # seed 000: FC bias decayed
    assert kinds("exclude_bn_bias") == ["kernel"] * 8
    with pytest.raises(ValueError, match="exclude_bn_bias"):
        decay_variables(model, "no_bn")


def test_decay_variables_reach_into_nested_models():
    inner = build_model("cnn_small", input_shape=(8, 8, 1), num_classes=10)
    outer = keras.Sequential([keras.Input((8, 8, 1)), inner])
    decayed = decay_variables(outer, "exclude_bn_bias")
    assert {v.path.rsplit("/", 1)[-1] for v in decayed} == {"kernel"}
    assert len(decayed) == 4


@pytest.mark.parametrize("name", SMOKE_MODELS)
def test_model_trains_one_step_and_round_trips_through_keras_file(name, tmp_path):
    shape = _smoke_input_shape(name)
    model = build_model(name, input_shape=shape, num_classes=SMOKE_CLASSES)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4,) + shape).astype("float32")
    y = np.arange(4) % SMOKE_CLASSES
    before = [v.numpy() for v in model.trainable_variables]
    loss, gradients = _loss_and_gradients(model, x, y)
    assert np.isfinite(float(loss))
    keras.optimizers.SGD(0.1).apply(gradients, model.trainable_variables)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    logits = np.array(model(x, training=False))
    assert logits.shape == (4, SMOKE_CLASSES)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored(x, training=False), logits, rtol=1e-5, atol=1e-5)
    keras.backend.clear_session()


@pytest.mark.parametrize("name", ["resnet8", "scale_invariant_resnet_tiny"])
def test_saved_model_export_serves_the_same_logits(name, tmp_path):
    # Custom layers in play: ZeroPadShortcut (resnet8), GhostBatchNormalization (scale invariant).
    model = build_model(name, input_shape=(16, 16, 3), num_classes=SMOKE_CLASSES)
    x = np.random.default_rng(5).normal(size=(2, 16, 16, 3)).astype("float32")
    model.export(str(tmp_path / "export"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "export"))  # must outlive the call
    served = reloaded.serve(tf.constant(x))
    np.testing.assert_allclose(served, model(x, training=False), rtol=1e-5, atol=1e-5)


def test_listing_table_and_description():
    row = describe_model("mlp", input_shape=(40,), num_classes=3)
    params = (40 * 256 + 256) + (256 * 128 + 128) + (128 * 3 + 3)
    assert row == {"name": "mlp", "paper": MODEL_CARDS.get("mlp").paper, "input_shape": [40],
                   "num_classes": 3, "params": params, "trainable_params": params}
    table = format_table([row]).splitlines()
    assert table[0].split()[:3] == ["model", "input", "shape"]
    assert table[2].split()[:5] == ["mlp", "40", "3", f"{params:,}", f"{params:,}"]


def test_listing_cli_reports_one_configuration_and_rejects_bad_flags():
    [row] = json.loads(listing_cli.run(
        ["prog", "--json", "--model=resnet8", "--num_classes=7", "--input_shape=16,16,3"]))
    model = build_model("resnet8", input_shape=(16, 16, 3), num_classes=7)
    assert (row["params"], row["trainable_params"]) == count_parameters(model)
    assert row["input_shape"] == [16, 16, 3] and row["num_classes"] == 7
    table = listing_cli.run(["prog", "--model=mlp"])  # no flags carried over from the last run
    assert table.splitlines()[2].split()[:3] == ["mlp", "8x8x1", "10"]
    with pytest.raises(flags.IllegalFlagValueError, match="resnet8"):
        listing_cli.run(["prog", "--model=resnet9"])
    with pytest.raises(flags.IllegalFlagValueError, match="need --model"):
        listing_cli.run(["prog", "--num_classes=3"])
