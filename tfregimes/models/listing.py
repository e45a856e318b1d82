"""Describe registered models: name, paper, natural input shape and classes, parameter counts."""

from __future__ import annotations

import math

import keras

from tfregimes.models.core import MODEL_CARDS, ModelOptions, build_model


def count_parameters(model: keras.Model) -> tuple[int, int]:
    """(total, trainable) parameter counts; total includes non-trainable ones (BN moving stats)."""
    trainable = sum(math.prod(v.shape) for v in model.trainable_variables)
    return model.count_params(), trainable


def describe_model(name: str, *, input_shape: tuple[int, ...] | None = None,
                   num_classes: int | None = None,
                   options: ModelOptions | None = None) -> dict:
    """Builds `name` (with its card's input shape and classes unless given) and describes it."""
    options = ModelOptions() if options is None else options
    card = MODEL_CARDS.get(name)
    input_shape = card.input_shape if input_shape is None else tuple(input_shape)
    num_classes = card.num_classes if num_classes is None else num_classes
    model = build_model(name, input_shape=input_shape, num_classes=num_classes, options=options)
    total, trainable = count_parameters(model)
    return {"name": name, "paper": card.paper, "input_shape": list(input_shape),
            "num_classes": num_classes, "params": total, "trainable_params": trainable}


def format_table(rows: list[dict]) -> str:
    header = ("model", "input shape", "classes", "params", "trainable", "paper")
    lines = [(r["name"], "x".join(map(str, r["input_shape"])), str(r["num_classes"]),
              f"{r['params']:,}", f"{r['trainable_params']:,}", r["paper"]) for r in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    right_aligned = {2, 3, 4}

    def render(cells):
        return "  ".join(cell.rjust(w) if i in right_aligned else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()
    rule = render(["-" * width for width in widths])
    return "\n".join([render(header), rule] + [render(line) for line in lines])
