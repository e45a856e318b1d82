"""Benchmark suites: named lists of training-step variants timed against each other on one model and batch.

A suite is a function returning its variants; register new ones in `SUITES` and
`python -m tfregimes.benchmark --suite=NAME` runs them. Every suite has a variant named "plain", the baseline its
ratios are taken against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras

from tfregimes.base.registry import Registry

BASELINE = "plain"


def default_optimizer() -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One training step to time: a regularizer with its options, and the optimizer it steps with."""

    name: str
    regularizer: str = "none"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    optimizer: Callable[[], keras.optimizers.Optimizer] = default_optimizer


SUITES: Registry[Callable[[], list[Variant]]] = Registry("benchmark suite")


@SUITES.register("regularizers")
def regularizers_suite() -> list[Variant]:
    """The plain step against Fisher (M = 4, 8, 16, and M = 8 taking L(B, w) from its sub-batch passes), proximal, SAM.

    Options other than M are the regularizers' defaults (fisher: α 1e-4, β 10, τ 10; proximal: 3 inner steps;
    sam: ρ 0.05, one ascent per batch): the cost depends on M and the number of passes, not on α, β, τ or ρ.
    """
    return [
        Variant(BASELINE),
        *(Variant(f"fisher_m{m}", "fisher", {"fisher_subbatches": m}) for m in (4, 8, 16)),
        Variant("fisher_m8_subbatches", "fisher", {"fisher_subbatches": 8, "fisher_batch_loss": "subbatches"}),
        Variant("proximal", "proximal"),
        Variant("sam", "sam"),
    ]


def suite_variants(name: str, only: list[str] | None = None) -> list[Variant]:
    """Suite `name`'s variants (or those of them named in `only`, always with the baseline)."""
    variants = SUITES.get(name)()
    if only:
        known = {v.name for v in variants}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"suite {name!r} has no variant {', '.join(unknown)}; "
                             f"its variants are: {', '.join(sorted(known))}")
        variants = [v for v in variants if v.name == BASELINE or v.name in only]
    return variants
