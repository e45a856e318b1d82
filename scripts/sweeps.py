"""How every reproduction runs its sweeps: in this process, through the library (`tfregimes.sweep.run_sweep`), each
point's processes forked from one preloaded TensorFlow (no start-up per sweep or per point), and read back through
`tfregimes.results.collect`. A page shows each sweep as the `python -m tfregimes.sweep` command that repeats it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tfregimes.results import collect
from tfregimes.sweep import SweepSpec, make_executor, make_spec, run_sweep, sweep_command

REPO = Path(__file__).resolve().parents[1]


def flag_dict(argv: Sequence[str]) -> dict[str, str]:
    """{name: value} of `--name=value` training flags (a flag list a script shares between its sweeps)."""
    return dict(argument.removeprefix("--").split("=", 1) for argument in argv)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A sweep of a reproduction: its spec, directory and local parallelism."""

    spec: SweepSpec
    sweep_dir: Path
    max_parallel: int = 1
    threads_per_run: int = 0

    @classmethod
    def of(cls, base: Mapping[str, Any], sweep_dir: Path, *, grid: Sequence[str] = (), zip_axes: Sequence[str] = (),
           seeds: Sequence[int | str] = (), sample: int = 0, sample_seed: int = 0, metrics: Sequence[str] = (),
           max_parallel: int = 1, threads_per_run: int = 0) -> Sweep:
        spec = make_spec(base, grid=grid, zip_axes=zip_axes, seeds=list(seeds), sample=sample,
                         sample_seed=sample_seed, metrics=metrics)
        return cls(spec, Path(sweep_dir), max_parallel, threads_per_run)

    def executor(self):
        return make_executor("local", max_parallel=self.max_parallel)

    def command(self) -> list[str]:
        """The shell command that repeats (or resumes) it, as sweep.json records it."""
        return sweep_command(self.spec, self.sweep_dir, self.executor(), self.threads_per_run)

    def run(self) -> dict[str, int]:
        """Runs (or resumes) it; a failed point fails the reproduction (its log is in the sweep directory)."""
        counts = run_sweep(self.spec, self.sweep_dir, self.executor(), threads_per_run=self.threads_per_run,
                           cwd=REPO)
        if counts["failed"]:
            raise RuntimeError(f"{counts['failed']} point(s) of {self.sweep_dir} failed; see sweep.json")
        return counts

    def runs(self) -> pd.DataFrame:
        """Its runs so far, one row each with every flag (`collect`); empty before the sweep has started."""
        return collect([self.sweep_dir]) if (self.sweep_dir / "sweep.json").exists() else pd.DataFrame()
