"""Which run directory a run writes, and whether it may: the default name claimed atomically, the lock a writing
process holds, the refusal of a directory started with other flags or on other data, the removal of a directory
whose run never started, and the wall clock a resumed run carries on."""

from __future__ import annotations

import time
from typing import Any

from tfregimes.base.run_dir import RunDirectory, RunLock
from tfregimes.base.run_files import read_object
from tfregimes.config import run_config as config_lib
from tfregimes.data import dataset_fingerprint, fingerprint_differences


class RunConfigError(ValueError):
    """Settings that cannot run; the message names the flag."""


class RunConfigMismatch(RunConfigError):
    """An existing run directory was started with other flags than the ones given now."""


class RunDataMismatch(RunConfigMismatch):
    """An existing run directory was started on other data than its dataset holds now (same flags)."""


def given_run_dir(config: config_lib.RunConfig) -> RunDirectory | None:
    """The --model_dir, which may hold a run to resume or report; None for a default name, which is always a fresh
    directory (a default name that exists is another run's, started in the same second: see `claim_run_dir`)."""
    return RunDirectory(config.model_dir) if config.model_dir else None


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


def check_same_data(run_dir: RunDirectory, current: dict[str, Any]) -> None:
    """Refuses a run directory whose recorded data fingerprint (data.json) differs from `current`: a finished run
    would report numbers of other data, an interrupted one would go on training on a mix of two data sets."""
    if not run_dir.data_path.exists():  # Not started, or written before runs recorded their data.
        return
    recorded, why = read_object(run_dir.data_path)
    if recorded is None:
        raise RunConfigError(f"{run_dir.root}/{why}; the data this run was trained on cannot be checked. Start a "
                             f"new run with another --model_dir, or remove {run_dir.data_path} to go on without "
                             "the check (the run records the data it finds now).")
    changes = fingerprint_differences(recorded, current)
    if changes:
        raise RunDataMismatch(
            f"{run_dir.root} holds a run trained on other data than {current['dataset']} holds now "
            f"({'; '.join(changes)}); its numbers are not of this data. Restore the data it was trained on to resume "
            "or report it, or start a new run with another --model_dir.")


def run_data_fingerprint(config: config_lib.RunConfig) -> dict[str, Any]:
    """The fingerprint of the data `config` trains on (tfregimes.data.fingerprint)."""
    return dataset_fingerprint(config.dataset, data_dir=config.data_dir or None)


def recorded_result(run_dir: RunDirectory, config: config_lib.RunConfig,
                    fingerprint: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Refuses a run directory started with other flags or on other data (`fingerprint`: the current data's, None:
    computed here if needed); returns its metrics if it is finished, else None. A metrics.json or data.json that
    cannot be read is refused in one line that says how to go on."""
    check_same_flags(run_dir, config)
    if run_dir.data_path.exists():
        check_same_data(run_dir, fingerprint if fingerprint is not None else run_data_fingerprint(config))
    if not run_dir.metrics_path.exists():
        return None
    metrics, why = read_object(run_dir.metrics_path)
    if metrics is None:  # Written atomically, so damaged afterwards: refused, never silently overwritten.
        raise RunConfigError(f"{run_dir.root}/{why}; its final metrics are lost, not its training. Remove "
                             f"{run_dir.metrics_path} and rerun the same command: it recomputes them (and the export) "
                             "from the run's last checkpoint.")
    return metrics


def claim_run_dir(config: config_lib.RunConfig, chief: bool
                  ) -> tuple[RunDirectory, RunLock | None, bool]:
    """The chief claims the run directory (a fresh default one, or --model_dir) and holds its lock until the run
    ends; other workers of a cluster write nothing there and take no lock. Returns (the directory, its lock,
    whether this claim created it)."""
    run_dir = given_run_dir(config)
    if not chief:
        return run_dir or RunDirectory.new_default(config.dataset, config.model), None, False
    if run_dir is None:
        run_dir, created = RunDirectory.claim_default(config.dataset, config.model), True
    else:
        created = not run_dir.root.exists()
    lock = run_dir.lock()
    if lock.took_over_from is not None:
        print(f"Taking over {run_dir.root} from process {lock.took_over_from}, which ended without releasing it.",
              flush=True)
    return run_dir, lock, created


def discard_unstarted(run_dir: RunDirectory) -> None:
    """Removes a directory this process created for a run that failed before it started (no flags.cfg): it holds
    only the lock file (and perhaps data.json), and would otherwise sit among the runs as one that is not a run."""
    entries = {entry.name for entry in run_dir.root.iterdir()} if run_dir.root.is_dir() else set()
    if ".lock" in entries and entries <= {".lock", run_dir.data_path.name}:
        for name in entries:
            (run_dir.root / name).unlink()
        run_dir.root.rmdir()


class WallClock:
    """The run's wall time over all its processes, kept in progress.json (an EpochRecorder record)."""

    name = "wall_seconds"

    def __init__(self, before: float, started: float):
        self.before, self.started = before, started  # Earlier processes' time; this one's start.

    def history_fields(self, epochs_done: int) -> dict[str, Any]:
        return {}

    def state(self) -> float:
        return self.before + time.perf_counter() - self.started
