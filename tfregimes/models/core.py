"""The model registry, the options every builder reads, and `build_model`.

A builder has the signature `(input_shape, num_classes, options) -> keras.Model` and returns a
plain Keras model that outputs logits (no softmax): losses use `from_logits=True`, and margins
and Fisher metrics need the logits. Variants of one family are `functools.partial`s of its builder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from tfregimes.base.registry import Registry

STEMS = ("auto", "cifar", "imagenet")


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """Every model knob; a builder reads only the fields that concern it."""

    hidden_sizes: tuple[int, ...] = (256, 128)  # mlp
    dropout: float = 0.0  # mlp, wrn (between the two convs of a block), vgg head, densenet
    wrn_depth: int = 28  # wrn: depth = 6n + 4
    wrn_width: int = 10  # wrn: widening factor k
    # Ghost batch normalization (Hoffer et al. 2017; seed 002 §3.1): None keeps ordinary BN.
    ghost_batch_size: int | None = None
    # seed 000 A.2: the last BN gamma of every residual block starts at 0, so each block starts
    # as the identity on its shortcut path.
    zero_init_residual: bool = False
    # ResNet-18/50 stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool), "cifar" (3x3/1 conv, no pool),
    # "auto" = cifar for inputs of side <= 64, imagenet otherwise.
    stem: str = "auto"
    # PyTorch-style BN defaults, which the papers' reference code uses (Keras' own are 0.99/1e-3).
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5

    def __post_init__(self):
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {self.stem!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.ghost_batch_size is not None and self.ghost_batch_size < 1:
            raise ValueError(f"ghost_batch_size must be >= 1, got {self.ghost_batch_size}")
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes}")
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))


# The options every builder with batch normalization reads (through `normalization.batch_norm`).
NORM_OPTIONS = frozenset({"ghost_batch_size", "bn_momentum", "bn_epsilon"})


def reject_unused_options(options: ModelOptions, model_name: str, used: set[str] | frozenset):
    """Fails when an option the model does not read differs from its default, so that e.g.
    `--dropout=0.5` on a model without dropout is an error rather than silently ignored."""
    defaults = ModelOptions()
    unused = [field.name for field in dataclasses.fields(options) if field.name not in used
              and getattr(options, field.name) != getattr(defaults, field.name)]
    if unused:
        raise ValueError(f"model {model_name!r} does not use the option(s) {', '.join(unused)}; "
                         f"it reads only {', '.join(sorted(used)) or 'none'}")


Builder = Callable[[tuple, int, ModelOptions], keras.Model]


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What the listing prints about a registered model: its source and natural configuration."""

    name: str
    paper: str
    input_shape: tuple[int, ...]
    num_classes: int


MODELS: Registry[Builder] = Registry("model")
MODEL_CARDS: Registry[ModelCard] = Registry("model card")


def register_model(name: str, builder: Builder, *, paper: str,
                   input_shape: tuple[int, ...], num_classes: int) -> Builder:
    """Registers `builder` under `name`, with the card the listing shows."""
    MODELS.register(name, builder)
    MODEL_CARDS.register(name, ModelCard(name, paper, tuple(input_shape), num_classes))
    return builder


def model_names() -> list[str]:
    return MODELS.names()


def build_model(name: str, *, input_shape: tuple[int, ...], num_classes: int,
                options: ModelOptions = ModelOptions()) -> keras.Model:
    """Builds the registered model `name`; it outputs logits."""
    builder = MODELS.get(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return builder(tuple(int(d) for d in input_shape), int(num_classes), options)
