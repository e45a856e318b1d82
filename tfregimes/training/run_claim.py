"""Which run directory a run writes, and whether it may: the default name claimed atomically, the lock a writing
process holds, the refusal of a directory started with other flags, and the wall clock a resumed run carries on."""

from __future__ import annotations

import time
from typing import Any

from tfregimes.base.run_dir import RunDirectory, RunLock
from tfregimes.config import run_config as config_lib


class RunConfigError(ValueError):
    """Settings that cannot run; the message names the flag."""


class RunConfigMismatch(RunConfigError):
    """An existing run directory was started with other flags than the ones given now."""


def resolve_run_dir(config: config_lib.RunConfig) -> RunDirectory:
    if config.model_dir:
        return RunDirectory(config.model_dir)
    return RunDirectory.new_default(config.dataset, config.model)


def check_same_flags(run_dir: RunDirectory, config: config_lib.RunConfig) -> None:
    """Refuses to resume a run directory whose recorded flags differ from `config` (presentation flags aside)."""
    if not run_dir.flags_path.exists():
        return
    recorded = config_lib.parse_flagfile_values(run_dir.flags_path.read_text())
    differences = []
    for name in config_lib.field_names():
        if name in config_lib.PRESENTATION_FIELDS or name not in recorded:
            continue
        given = config_lib.format_flag_value(getattr(config, name))
        if recorded[name] != given:
            differences.append(f"--{name}: recorded {recorded[name]!r}, given {given!r}")
    if differences:
        raise RunConfigMismatch(
            f"{run_dir.root} holds a run started with other flags ({'; '.join(differences)}). Resume it with: "
            f"python -m tfregimes.train --flagfile={run_dir.flags_path} --model_dir={run_dir.root} (or start a new "
            "run with another --model_dir).")


def claim_run_dir(run_dir: RunDirectory, config: config_lib.RunConfig, chief: bool
                  ) -> tuple[RunDirectory, RunLock | None]:
    """The chief claims the run directory (a fresh default one, or --model_dir) and holds its lock until the run
    ends; other workers of a cluster write nothing there and take no lock."""
    if not chief:
        return run_dir, None
    if not config.model_dir:
        run_dir = RunDirectory.claim_default(config.dataset, config.model)
    lock = run_dir.lock()
    if lock.took_over_from is not None:
        print(f"Taking over {run_dir.root} from process {lock.took_over_from}, which ended without releasing it.",
              flush=True)
    return run_dir, lock


class WallClock:
    """The run's wall time over all its processes, kept in progress.json (an EpochRecorder record)."""

    name = "wall_seconds"

    def __init__(self, before: float, started: float):
        self.before, self.started = before, started  # Earlier processes' time; this one's start.

    def history_fields(self, epochs_done: int) -> dict[str, Any]:
        return {}

    def state(self) -> float:
        return self.before + time.perf_counter() - self.started
