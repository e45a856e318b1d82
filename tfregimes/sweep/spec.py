"""What a sweep runs: its axes, and their expansion into named points.

Axes (each a training flag and its values):
  grid   the cartesian product of all grid axes;
  zip    axes that vary together, one value of each per point (e.g. a batch size with its scaled learning rate);
  seeds  replicates: every point of the product is run once per seed (the innermost axis);
  sample with `sample=N`, N points drawn at random (seeded by `sample_seed`) from the grid and zip axes in place
         of their product; a grid axis may then also be a range `LOW:HIGH` (integers: uniform over LOW..HIGH
         inclusive; otherwise uniform over [LOW, HIGH)) or `LOW:HIGH:log` (log-uniform), e.g. a random transition
         epoch as seed 001 §4 draws one.

A point's name is made of the flags it varies, `batch_size-64_seed-0`, so a sweep directory reads as its grid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import random
import re
from collections.abc import Sequence
from typing import Any

from tfregimes.base.run_files import flagfile_text


class SweepSpecError(ValueError):
    """A sweep that cannot run; the message names the flag or the point."""


@dataclasses.dataclass(frozen=True)
class Range:
    """A sampled axis `LOW:HIGH[:log]`."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: random.Random) -> str:
        if self.integer and not self.log:
            return str(rng.randint(int(self.low), int(self.high)))
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            return str(round(value)) if self.integer else f"{value:.4g}"
        return f"{rng.uniform(self.low, self.high):.4g}"

    def text(self) -> str:
        bounds = [str(int(self.low)) if self.integer else repr(self.low),
                  str(int(self.high)) if self.integer else repr(self.high)]
        return ":".join(bounds + (["log"] if self.log else []))


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """The resolved description of a sweep; `to_json` is what sweep.json records and a rerun is compared with."""

    base: dict[str, str]  # Flags every point shares (flag name -> value as absl parses it).
    grid: dict[str, list[str] | Range] = dataclasses.field(default_factory=dict)
    zip: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    seeds: list[str] = dataclasses.field(default_factory=list)
    sample: int = 0  # 0: the full product.
    sample_seed: int = 0
    metrics: list[str] = dataclasses.field(default_factory=list)  # tfregimes.evaluate --metrics per point.

    def to_json(self) -> dict[str, Any]:
        return {"base": dict(self.base),
                "grid": {name: (v.text() if isinstance(v, Range) else list(v)) for name, v in self.grid.items()},
                "zip": {name: list(v) for name, v in self.zip.items()}, "seeds": list(self.seeds),
                "sample": self.sample, "sample_seed": self.sample_seed, "metrics": list(self.metrics)}


@dataclasses.dataclass(frozen=True)
class Point:
    name: str
    overrides: dict[str, str]  # The flags this point varies, including seed.


def parse_axis(text: str, flag: str) -> tuple[str, list[str] | Range]:
    """`NAME=V1,V2,...` (values of a list-valued flag separated by `;`: `lr_boundaries=15,25;20,28`) or
    `NAME=LOW:HIGH[:log]`."""
    name, sep, values = text.partition("=")
    name = name.strip().lstrip("-")
    if not sep or not name or not values:
        raise SweepSpecError(f"--{flag}={text}: expected NAME=V1,V2,... (e.g. --{flag}=batch_size=32,64)")
    if re.fullmatch(r"[^:,;]+:[^:,;]+(:log)?", values):
        return name, _parse_range(values, f"--{flag}={text}")
    parts = [v.strip() for v in values.split(";" if ";" in values else ",")]
    if any(not part for part in parts):
        raise SweepSpecError(f"--{flag}={text}: an empty value")
    if len(set(parts)) != len(parts):
        raise SweepSpecError(f"--{flag}={text}: a value is repeated")
    return name, parts


def _parse_range(text: str, where: str) -> Range:
    low_text, high_text, *log = text.split(":")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise SweepSpecError(f"{where}: a range needs two numbers, LOW:HIGH[:log]") from None
    integer = _is_int(low_text) and _is_int(high_text)
    if not low < high or (log and low <= 0):
        raise SweepSpecError(f"{where}: a range needs LOW < HIGH (and LOW > 0 for :log)")
    return Range(low, high, log=bool(log), integer=integer)


def _is_int(text: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", text.strip()) is not None


def make_spec(base: dict[str, str], grid: Sequence[str] = (), zip_axes: Sequence[str] = (),
              seeds: Sequence[str] = (), sample: int = 0, sample_seed: int = 0, metrics: Sequence[str] = (),
              flag_names: Sequence[str] | None = None) -> SweepSpec:
    """The spec of the command-line axes, base values taken as given. `flag_names`: the training flags an axis may
    name. From Python, `tfregimes.sweep.make_spec` (build.py) also checks and canonicalizes the base flags."""
    grid_axes = dict(parse_axis(text, "grid") for text in grid)
    zipped = dict(parse_axis(text, "zip") for text in zip_axes)
    names = [parse_axis(text, "grid")[0] for text in grid] + [parse_axis(text, "zip")[0] for text in zip_axes]
    if seeds:
        names.append("seed")
    for name in names:
        if names.count(name) > 1:
            raise SweepSpecError(f"--{name} is an axis twice (--grid, --zip or --seeds); give it once")
        if flag_names is not None and name not in flag_names:
            raise SweepSpecError(f"--grid/--zip: {name!r} is not a flag of tfregimes.train")
        if name == "model_dir":
            raise SweepSpecError("--model_dir cannot be an axis: the sweep names each point's directory")
    for name, values in zipped.items():
        if isinstance(values, Range):
            raise SweepSpecError(f"--zip={name}=...: a zipped axis is a list, not a range")
        if len(values) != len(next(iter(zipped.values()))):
            raise SweepSpecError(f"--zip: every zipped axis needs as many values; {name} has {len(values)}, "
                                 f"{next(iter(zipped))} has {len(next(iter(zipped.values())))}")
    if not sample and any(isinstance(v, Range) for v in grid_axes.values()):
        raise SweepSpecError("--grid=NAME=LOW:HIGH: a range is only drawn from with --sample=N")
    if sample < 0:
        raise SweepSpecError("--sample must be >= 0")
    seed_values = [str(s).strip() for s in seeds]
    if any(not _is_int(s) for s in seed_values) or len(set(seed_values)) != len(seed_values):
        raise SweepSpecError(f"--seeds={','.join(seed_values)}: expected distinct integers")
    return SweepSpec(base=dict(base), grid=grid_axes, zip=zipped, seeds=seed_values, sample=sample,
                     sample_seed=sample_seed, metrics=list(metrics))


def expand(spec: SweepSpec) -> list[Point]:
    """The points of `spec`, in a fixed order (grid axes as given, then zip, seeds innermost)."""
    combos = _sampled(spec) if spec.sample else _product(spec)
    seeds = spec.seeds or [None]
    points = []
    for combo in combos:
        for seed in seeds:
            overrides = dict(combo) if seed is None else {**combo, "seed": seed}
            points.append(Point(point_name(overrides), overrides))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        clash = next(n for n in names if names.count(n) > 1)
        raise SweepSpecError(f"two points would share the directory {clash!r}; make the axis values distinct")
    return points


def _product(spec: SweepSpec) -> list[dict[str, str]]:
    grid_lists = [[(name, value) for value in values] for name, values in spec.grid.items()]
    zipped = _zip_rows(spec)
    return [dict(itertools.chain(grid_choice, zip_row))
            for grid_choice in itertools.product(*grid_lists) for zip_row in zipped]


def _zip_rows(spec: SweepSpec) -> list[list[tuple[str, str]]]:
    if not spec.zip:
        return [[]]
    length = len(next(iter(spec.zip.values())))
    return [[(name, values[i]) for name, values in spec.zip.items()] for i in range(length)]


def _sampled(spec: SweepSpec) -> list[dict[str, str]]:
    """`spec.sample` distinct draws; fails when the axes hold fewer distinct combinations."""
    discrete = all(not isinstance(v, Range) for v in spec.grid.values())
    if discrete and spec.sample > len(_product(spec)):
        raise SweepSpecError(f"--sample={spec.sample}: the axes hold only {len(_product(spec))} combinations")
    rng = random.Random(spec.sample_seed)
    zipped = _zip_rows(spec)
    draws: list[dict[str, str]] = []
    for _ in range(100 * spec.sample):
        draw = {name: values.draw(rng) if isinstance(values, Range) else rng.choice(values)
                for name, values in spec.grid.items()}
        draw.update(rng.choice(zipped))
        if draw not in draws:
            draws.append(draw)
        if len(draws) == spec.sample:
            return draws
    raise SweepSpecError(f"--sample={spec.sample}: could not draw that many distinct points; widen the ranges")


MAX_POINT_NAME = 120  # Far below the 255 bytes a file name may have, with room for a run's own suffixes.


def point_name(overrides: dict[str, str]) -> str:
    """`name-value` pairs joined by `_`; characters a path or a shell would trip on become `_`. A name longer than
    MAX_POINT_NAME keeps its start and ends with a digest of the whole, so long values still name distinct points."""
    if not overrides:
        return "base"
    name = "_".join(f"{flag}-{re.sub(r'[^A-Za-z0-9.+-]', '_', value)}" for flag, value in overrides.items())
    if len(name) <= MAX_POINT_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[:MAX_POINT_NAME - len(digest) - 1]}-{digest}"


def point_argv(base_flagfile: str, point: Point, run_dir: str) -> list[str]:
    """The training flags of one point after `python -m tfregimes.train`."""
    return [f"--flagfile={base_flagfile}", *(f"--{k}={v}" for k, v in point.overrides.items()),
            f"--model_dir={run_dir}"]


def base_flagfile_text(base: dict[str, str]) -> str:
    return flagfile_text(base, comments=["Flags every point of this sweep shares (written by tfregimes.sweep); "
                                         "each point adds its own."])


def validate_points(points: Sequence[Point], base: dict[str, str], parse, check=None) -> dict[str, Any]:
    """Runs `parse(argv) -> RunConfig` (the training CLI's own flag parsing and checks, raising ValueError) on
    every point, then `check(config)` (e.g. that it fits its data's size, raising ValueError) where given; returns
    the configs by point name. Raises SweepSpecError naming the first bad point and the flag."""
    configs = {}
    for point in points:
        argv = [f"--{k}={v}" for k, v in {**base, **point.overrides}.items()] + ["--model_dir=validation"]
        try:
            configs[point.name] = parse(argv)
            if check is not None:
                check(configs[point.name])
        except ValueError as error:  # `parse` and `check` report a bad flag as a ValueError naming it.
            raise SweepSpecError(f"point {point.name}: {error}") from None
    return configs
