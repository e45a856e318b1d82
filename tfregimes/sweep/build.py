"""A sweep from Python: `make_spec` over the training flags, and `sweep_command`, the shell command that repeats it.

    from tfregimes.sweep import make_executor, make_spec, run_sweep
    spec = make_spec({"dataset": "digits", "epochs": 2}, grid=["batch_size=32,128"], seeds=3, metrics=["sharpness"])
    counts = run_sweep(spec, "sweeps/x", executor=make_executor("local", max_parallel=2))

The spec is the one `python -m tfregimes.sweep` builds from the same flags: names are training flags, base values
are the text absl parses them back to (`run_flag_rules.canonical_flag_texts`), so sweep.json's recorded command
(`sweep_command`) resumes the sweep from a shell, and the sweep CLI reruns a Python sweep as a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tfregimes.config import run_config as config_lib
from tfregimes.diagnostics.adapters import MINIMUM_METRICS
from tfregimes.sweep import spec as spec_lib
from tfregimes.sweep.local import LocalExecutor
from tfregimes.sweep.spec import Range, SweepSpec, SweepSpecError
from tfregimes.training.run_flag_rules import InvalidFlagsError, canonical_flag_texts


def make_spec(base: Mapping[str, Any] | None = None, grid: Sequence[str] = (), zip_axes: Sequence[str] = (),
              seeds: int | Sequence[int | str] = (), sample: int = 0, sample_seed: int = 0,
              metrics: Sequence[str] = ()) -> SweepSpec:
    """The spec of a sweep of `tfregimes.train`: `base` the flags every point shares (any value absl takes: 2,
    "2", True, (16, 8)); axes as the CLI's flags (`grid=["batch_size=32,128"]`); `seeds` the seeds, or N for seeds
    0..N-1; `metrics` the `tfregimes.evaluate` metrics run on each point. Raises SweepSpecError naming the flag."""
    seeds = [str(s) for s in (range(seeds) if isinstance(seeds, int) else seeds)]
    unknown = sorted(set(metrics) - set(MINIMUM_METRICS.names()))
    if unknown:
        raise SweepSpecError(f"--metrics: unknown {', '.join(unknown)}; valid: {', '.join(MINIMUM_METRICS.names())}")
    base = dict(base or {})
    if "model_dir" in base:
        raise SweepSpecError("--model_dir: the sweep names each point's directory (SWEEP_DIR/<point>); remove it")
    axes = [*grid, *zip_axes] + (["seed=0"] if seeds else [])
    both = sorted({axis.partition("=")[0].strip().lstrip("-") for axis in axes} & set(base))
    if both:
        raise SweepSpecError(f"--{both[0]} is both a shared flag and an axis; give it once")
    try:
        base = canonical_flag_texts(base)
    except InvalidFlagsError as error:
        raise SweepSpecError(str(error)) from None
    return spec_lib.make_spec(base, grid=grid, zip_axes=zip_axes, seeds=seeds, sample=sample,
                              sample_seed=sample_seed, metrics=metrics, flag_names=config_lib.field_names())


def _axis_text(name: str, values: list[str] | Range) -> str:
    if isinstance(values, Range):
        return f"{name}={values.text()}"
    return f"{name}={(';' if any(',' in v for v in values) else ',').join(values)}"


def sweep_command(spec: SweepSpec, sweep_dir: str | Path, executor=None, threads_per_run: int = 0,
                  preloaded: bool = True) -> list[str]:
    """`python -m tfregimes.sweep ...` with the same spec, directory and (local) parallelism: what sweep.json records
    as a Python sweep's command, to resume or repeat it from a shell."""
    argv = ["python", "-m", "tfregimes.sweep", *(f"--{name}={value}" for name, value in spec.base.items()),
            *(f"--grid={_axis_text(name, values)}" for name, values in spec.grid.items()),
            *(f"--zip={_axis_text(name, values)}" for name, values in spec.zip.items())]
    if spec.seeds:
        argv.append(f"--seeds={','.join(spec.seeds)}")
    if spec.sample:
        argv += [f"--sample={spec.sample}", f"--sample_seed={spec.sample_seed}"]
    if spec.metrics:
        argv.append(f"--metrics={','.join(spec.metrics)}")
    if isinstance(executor, LocalExecutor) and executor.max_parallel > 1:
        argv.append(f"--max_parallel={executor.max_parallel}")
    if threads_per_run:
        argv.append(f"--threads_per_run={threads_per_run}")
    if not preloaded:
        argv.append("--point_start=fresh")
    return [*argv, f"--sweep_dir={sweep_dir}"]
