"""What every part of the seed 003 reproduction shares: the setting, the sweeps that train it, and the rows read
back from the run directories (tfregimes.results) with the weight norm of each minimum.

Keskar et al. (seed 003) train F1 (784 inputs, 5 batch-normalized ReLU layers of 512, appendix B.1) on MNIST with
Adam at batch 256 (SB) and at 10 % of the training set (LB), each run until its training accuracy is ~99–100 %
(Table 2), and measure the ε-sharpness of the minimum (their eq. 3/4) in the full space and in a random
100-dimensional subspace at ε = 1e-3 and 5e-4 with 10 iterations of L-BFGS-B (Tables 3–4). Here: F1 itself
(`--model=f1`: 1,460,234 trainable weights) on the full 60,000-example Fashion-MNIST training set (MNIST is
not available offline), SB 256 and LB 6,000 (10 % of the training set, ~23 × SB, as the paper's), Adam at its
default rate; every run stops at the first epoch whose clean training loss (inference mode, unaugmented) reaches one
target (`--stop_at_train_loss`), so that minima compare at equal loss. Sharpness is
`python -m tfregimes.evaluate --metrics=sharpness` at its defaults (the paper's ε, p = 100, 10 iterations) on a fixed
2,048-example sample of the training set, run by the sweep engine after each point.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from reproduction import Claim, claim_lines, shown
from sweeps import Sweep, flag_dict

from tfregimes.analysis import Comparability, Effect, paired_difference, same_stop_target, summarize
from tfregimes.base.run_dir import write_atomically
from tfregimes.base.run_files import SWEEP_FILE
from tfregimes.results import collect

REPO = Path(__file__).resolve().parents[2]
SHARPNESS_KEYS = ("full_eps1e-3", "full_eps5e-4", "subspace_eps1e-3", "subspace_eps5e-4")


@dataclasses.dataclass(frozen=True)
class Setting:
    dataset: str
    model_flags: tuple[str, ...]
    train_examples: int  # The training set's size; --train_subset when smaller than the dataset's.
    train_subset: int  # 0: the whole training split.
    small_batch: int
    large_batch: int  # 10 % of the training set (seed 003 §2.2).
    figure4_batches: tuple[int, ...]  # Figure 4's batch sizes besides SB and LB, which the table part trains.
    seeds: tuple[int, ...]  # SB and LB (the table and Figure 2).
    figure4_seeds: tuple[int, ...]  # Figure 4's other batch sizes: the first of `seeds`, fewer for time.
    remedy_seeds: tuple[int, ...]  # Conservative training (Table 7).
    target_loss: float  # --stop_at_train_loss: the clean training loss every run is stopped at.
    max_epochs: int  # A run that has not reached the target by then stops and says so.
    learning_rate: float
    max_parallel: int


def setting(smoke: bool, seed: int) -> Setting:
    if smoke:  # Seconds: a tiny MLP on digits; reproduces nothing. Figure 4 and Figure 2 reuse the SB/LB sweep.
        return Setting("digits", ("--model=mlp", "--hidden_sizes=16"), 400, 400, 20, 40, (), (seed,), (seed,),
                       (seed,), 1.0, 2, 1e-2, 2)
    # Pilot (seed 0 of SB 256 and LB 6,000 at once, 1 thread each, on the 2 cores shared with other work at load
    # 9–15, 2026-12-08; --stop_check_every=1 --eval_every=1): 25–75 s per epoch, ~40 s typical, the same for SB and
    # LB (the same 60,000 examples' arithmetic). Clean training loss (10,000-example check) after epochs 1–12:
    #   SB  0.308 0.268 0.246 0.227 0.201 0.202 0.164 0.161 0.144 0.148 0.130 0.128
    #   LB  0.659 0.418 0.298 0.252 0.214 0.185 0.168 0.141 0.122 0.097 0.076 0.076
    # (test accuracy at epoch 12: SB 88.7 %, LB 88.4 %). Target 0.15: SB at epoch ~9, LB ~8, i.e. ~17 epochs a seed,
    # ~25 min for the table's 10 runs two at a time; with sharpness, Figure 4's 4 runs and 3 conservative-LB runs
    # (3 gradient steps a batch) the full mode fits ~70 min. 0.10 would cost ~30 % more; 0.20 saves little (SB's
    # loss is noisy around it: 0.201, 0.202, then 0.164).
    return Setting("fashion_mnist", ("--model=f1",), 60_000, 0, 256, 6_000, (1_000, 2_000),
                   tuple(seed + i for i in range(5)), (seed, seed + 1), tuple(seed + i for i in range(3)),
                   0.15, 30, 1e-3, 2)


TARGET_ACCURACY = "94–95"  # The pilot's clean training accuracy at the target loss (SB and LB alike), for the page.


def describe(config: Setting) -> str:
    """The setting in words, for each section of the page."""
    model = " ".join(config.model_flags).replace("--model=", "")
    data = (f"the whole {config.train_examples:,}-example training split of `{config.dataset}`" if not
            config.train_subset else f"a fixed {config.train_subset:,}-example training subset of `{config.dataset}`")
    return (f"Setting: `{model}` on {data} and its full test split; Adam at a constant {config.learning_rate:g}; "
            f"SB = {config.small_batch}, LB = {config.large_batch:,} "
            f"({100 * config.large_batch / config.train_examples:g} % of the training set); each run stops at the "
            f"first epoch whose clean training loss (inference mode, unaugmented, on a fixed sample of up to 10,000 "
            f"training examples, checked every epoch) is at most {config.target_loss:g} "
            f"(`--stop_at_train_loss={config.target_loss:g}`), or after {config.max_epochs} epochs, saying so. "
            "Mean ± sample std over the seeds.")


def setting_table(config: Setting) -> list[str]:
    """The page's setting beside the paper's (seed 003 Tables 1–4, appendix B.1), as Markdown rows."""
    model = " ".join(config.model_flags)
    others = ", ".join(f"{b:,}" for b in config.figure4_batches)
    return [
        "| | seed 003 (F1, Tables 1–4) | here |", "|---|---|---|",
        f"| data | MNIST, 60,000 training examples | `{config.dataset}`, {config.train_examples:,} training examples |",
        f"| model | F1: 784 → 5 × (dense 512, batch norm, ReLU) → 10 (appendix B.1) | `{model}` |",
        f"| optimizer | Adam | Adam, constant rate {config.learning_rate:g} |",
        f"| batch sizes | SB 256, LB 10 % of the training set (6,000) | SB {config.small_batch}, LB "
        f"{config.large_batch:,} ({config.large_batch / config.small_batch:.1f} × SB); Figure 4 also {others} |",
        f"| epochs, stop | until ~99–100 % training accuracy | until the clean training loss ≤ {config.target_loss:g} "
        f"(inference mode), at most {config.max_epochs} epochs |",
        f"| seeds | 5 (mean ± std) | SB, LB {len(config.seeds)}; Figure 4's other batch sizes "
        f"{len(config.figure4_seeds)}; conservative LB {len(config.remedy_seeds)} |",
        "| sharpness | ε = 1e-3, 5e-4; full space, 100-dim subspace; 10 L-BFGS-B iterations | the same, on a fixed "
        "2,048-example training sample |"]


def train_flags(config: Setting) -> list[str]:
    """The training flags every run shares: Adam at a constant rate (seed 003 uses Adam's defaults), stopped at the
    clean-loss target checked every epoch, and the test split evaluated every epoch (Figure 2's test curve)."""
    subset = [f"--train_subset={config.train_subset}"] if config.train_subset else []
    return [f"--dataset={config.dataset}", *config.model_flags, *subset,
            "--optimizer=adam", f"--learning_rate={config.learning_rate}", "--lr_schedule=constant",
            f"--epochs={config.max_epochs}", f"--stop_at_train_loss={config.target_loss}", "--stop_check_every=1",
            "--eval_every=1", "--verbose=0"]


def sweep(config: Setting, sweep_dir: Path, *, grid: tuple[str, ...] = (), seeds: tuple[int, ...] | None = None,
          **fixed) -> Sweep:
    """A sweep over `grid` (and the part's `fixed` flags) of every seed (default the table's), with sharpness after
    each point."""
    return Sweep.of({**flag_dict(train_flags(config)), **fixed}, sweep_dir, grid=grid,
                    seeds=config.seeds if seeds is None else seeds, metrics=["sharpness"],
                    max_parallel=config.max_parallel, threads_per_run=1)


def sb_lb_sweep(config: Setting, work_dir: Path) -> Sweep:
    """SB and LB from the same initialization (same --seed: same initial weights and training subset)."""
    return sweep(config, work_dir / "sb_lb", grid=(f"batch_size={config.small_batch},{config.large_batch}",))


def run_sweeps(sweeps: dict[str, Sweep], label: str, train: bool = True) -> None:
    """Runs (or resumes) each sweep; with `train` false only says that the page reads what has finished."""
    if not train:
        print(f"[{label}] --notrain: reading the runs that finished, training nothing", flush=True)
        return
    for one in sweeps.values():
        print(f"[{label}] {shown(one.command())}", flush=True)
        one.run()


def start_part(label: str, *, smoke: bool, seed: int, work_dir: Path, train: bool,
               own_sweeps: Callable[[Setting, Path], dict[str, Sweep]] | None = None
               ) -> tuple[float, Setting, dict[str, Sweep]]:
    """What every part does first: note its start time, make the setting and run (or resume; with `train` false,
    skip) its sweeps: `sb_lb`, the SB/LB sweep all parts share (a part after the first reuses its runs), then the
    part's own, `own_sweeps(config, work_dir)`. Returns the start time, the setting and the sweeps by name."""
    started = time.time()
    config = setting(smoke, seed)
    sweeps = {"sb_lb": sb_lb_sweep(config, work_dir), **(own_sweeps(config, work_dir) if own_sweeps else {})}
    run_sweeps(sweeps, label, train)
    return started, config, sweeps


def invocation(results: Path, command: str, started: float, train: bool, *, runs=None,
               record: Path | None = None) -> dict:
    """The command that trained a part and how long it took: this one; or with --notrain (pages only) the one the
    training run recorded: `record` (its copy in the work directory) or else `results` (the part's JSON) when that
    JSON shows the same runs (`runs`, as the part passes them to write_part; a page from other runs, e.g. an older
    setting's, keeps no wall time), so that rewriting a page keeps the training run's wall time."""
    if train:
        return {"command": command, "minutes": (time.time() - started) / 60}
    if record is not None and record.exists():
        return json.loads(record.read_text())
    previous = json.loads(results.read_text()) if results.exists() else {}
    if previous.get("invocation") and (runs is None or _run_names(previous.get("runs")) == _run_names(runs)):
        return previous["invocation"]
    return {"command": f"{command} (pages only; no training run recorded)", "minutes": float("nan")}


def _run_names(runs) -> set[str]:
    """The run names of a part's `runs` (a list of rows, or a dict of such lists)."""
    rows = [r for group in runs.values() for r in group] if isinstance(runs, dict) else list(runs or [])
    return {r["run"] for r in rows}


def _json(value):
    """JSON for what the analysis keeps besides plain numbers: a Summary (its mean, std and n) or another
    dataclass."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else str(value)


def write_part(output: Path, name: str, *, started: float, command: str, train: bool, analysis: dict, runs,
               claims: list[Claim], plot: Callable[[Path], None], figure: tuple[str, str],
               section: Callable[[dict], list[str]], extra: dict | None = None,
               work_dir: Path | None = None) -> list[Claim]:
    """Writes a part's results into `output`: its figure (`plot(path)`; `figure`: the file's name and its alt text),
    `<name>.json` (the analysis, the claims with their verdicts, the runs, the invocation that trained them and
    `extra`) and `<name>.md`: `section(invocation)`, the figure, then the claims; a training run also keeps its
    invocation in `work_dir` (`invocation_<name>.json`), where a later --notrain finds it. Returns the claims."""
    kept = work_dir / f"invocation_{name}.json" if work_dir is not None else None  # Beside the runs it describes.
    record = invocation(output / f"{name}.json", command, started, train, runs=runs, record=kept)  # Read first.
    if train and kept is not None:
        write_atomically(kept, json.dumps(record))
    output.mkdir(parents=True, exist_ok=True)
    plot(output / figure[0])
    verdicts = [{"claim": claim, "numbers": numbers, **verdict.as_dict()} for claim, verdict, numbers in claims]
    write_atomically(output / f"{name}.json", json.dumps({"analysis": analysis, "claims": verdicts, "runs": runs,
                                                          "invocation": record, **(extra or {})}, default=_json))
    write_atomically(output / f"{name}.md", "\n".join([
        *section(record), f"![{figure[1]}]({figure[0]})", "", *claim_lines(claims)]))
    return claims


def weight_norm(run_dir: Path) -> float:
    """‖x‖₂ of the trained weights the sharpness box is built around (FlatModel's vector: every trainable
    variable), read from the run's export."""
    from tfregimes.diagnostics.minimum.flat_model import FlatModel
    from tfregimes.training.export import split_input_normalization
    from tfregimes.training.scoring import load_keras_model
    network, _ = split_input_normalization(load_keras_model(run_dir / "export"))
    return float(np.linalg.norm(FlatModel(network).weights()))


def row(run: dict) -> dict:
    """One run, from its row of `tfregimes.results.collect`: its settings, final metrics, stop, sharpness (value and
    L-BFGS-B status) and weight norm."""
    done = run["state"] == "done"
    keys = [key for key in SHARPNESS_KEYS if f"status/sharpness/{key}" in run and isinstance(
        run[f"status/sharpness/{key}"], str)]  # Evaluated: the sharpness entries are flat, "sharpness/full_eps1e-3".
    return {"run": run["run"], "batch_size": int(run["batch_size"]), "seed": int(run["seed"]),
            "augment": run["augment"], "regularizer": run["regularizer"], "state": run["state"],
            **{name: _number(run[name]) for name in ("train_accuracy", "test_accuracy", "train_loss", "test_loss",
                                                     "epochs_run", "wall_seconds")},
            "reached_target": run["stop/reached_target"], "stopped_at_epoch": _number(run["stop/stopped_at_epoch"]),
            "sharpness": {key: run[f"sharpness/{key}"] for key in keys},
            "status": {key: run[f"status/sharpness/{key}"] for key in keys},
            "weight_norm": weight_norm(Path(run["run_dir"])) if done else None,
            # The stop/... columns (criterion, target, reached): what same_stop_target reads to say whether two
            # groups of minima compare.
            **{key: value for key, value in run.items() if key.startswith("stop/")}}


def _number(value) -> float | None:
    """A frame's number as a part's JSON keeps it: None where it is missing (NaN)."""
    return None if value is None or value != value else float(value)


def read_rows(sweep_dir: Path) -> list[dict]:
    """The finished (done or diverged) runs of a sweep (`tfregimes.results.collect`); unfinished points are left
    out."""
    if not (sweep_dir / SWEEP_FILE).exists():
        return []
    return [row(run) for run in collect([sweep_dir]).to_dict("records") if run["state"] in ("done", "diverged")]


def group(rows: list[dict], **match) -> list[dict]:
    """The finished runs whose fields equal `match`."""
    return [r for r in rows if r["state"] == "done" and all(r[k] == v for k, v in match.items())]


def summary(rows: list[dict]) -> dict:
    """Every number the tables show as a Summary over a group's runs (mean ± std, n), and how many reached the
    target."""
    out: dict = {"runs": len(rows), "reached": sum(bool(r["reached_target"]) for r in rows)}
    for name in ("train_accuracy", "test_accuracy", "weight_norm", "epochs_run"):
        out[name] = summarize(r[name] for r in rows)
    out["sharpness"] = {key: summarize(r["sharpness"].get(key) for r in rows) for key in SHARPNESS_KEYS}
    out["statuses"] = sorted({status for r in rows for status in r["status"].values()})
    return out


def by_seed(rows: list[dict], value: Callable[[dict], float | None]) -> dict[int, float | None]:
    """{seed: value(run)}: what paired_difference pairs two groups of runs on (the same seed: the same
    initialization and training subset)."""
    return {r["seed"]: value(r) for r in rows}


def test_points(row: dict) -> float | None:
    """Test accuracy in percentage points."""
    return None if row["test_accuracy"] is None else 100 * row["test_accuracy"]


def log_sharpness(key: str) -> Callable[[dict], float]:
    """log φ of a run (NaN where φ is missing or not positive): sharpness differs by orders of magnitude between
    runs, so groups compare by the mean of the per-seed log-ratio."""
    def value(row: dict) -> float:
        phi = row["sharpness"].get(key)
        return float(np.log(phi)) if phi is not None and phi > 0 else float("nan")
    return value


def sharpness_log_ratio(rows: list[dict], reference: list[dict], key: str, label: str) -> Effect:
    """Mean over seeds of log(φ_rows / φ_reference) for sharpness `key`, paired by seed, with its 95 % CI."""
    return paired_difference(by_seed(rows, log_sharpness(key)), by_seed(reference, log_sharpness(key)),
                             name=f"mean log({label}) of φ {key}")


def stopped_alike(*groups: list[dict]) -> Comparability:
    """Whether the minima of `groups` compare: all trained to the same stop target and all reached it
    (tfregimes.analysis.same_stop_target on their stop/... columns; absent, they do not)."""
    return same_stop_target(pd.DataFrame([r for rows in groups for r in rows]))
