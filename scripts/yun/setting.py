"""The scaled-down setting of the seed 002 reproduction and its runs: one sweep per table column.

The paper (§5.1) trains a scale-invariant ResNet-18 (ghost BN of 64, non-affine norm after pooling, fixed last
layer) on CIFAR-10 for 300 epochs, SGD with μ = 0.9, the learning rate ÷10 at 50 % and 75 % of the run, three runs
per cell. Here: tfregimes' `scale_invariant_resnet_tiny` (two stages of one basic block, widths 8 and 16) with the
ImageNet stem (7×7/2 conv and 3×3/2 max-pool, so 28×28 inputs are 7×7 in the blocks: a run costs seconds) on
Fashion-MNIST subsets of N examples (the full 10,000-image test split), no augmentation, the same schedule shape
over fewer epochs. A table column is one (N, B); its rows are weight decays λ on one grid of powers of two, and the
column's *marked* row is the λ whose tuning factor Nηλ/(B(1 − μ)) (eq. 27) equals the reference column's. Each
column runs the marked row and `offsets` rows either side of it (the paper runs the same λ grid for every column;
at this budget a column only runs the window around its marked cell, which still shows a best λ that does not
follow the tuning factor as a best cell off the marked row, at the window's edge if it stays put while N changes).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd
from sweeps import Sweep, flag_dict

from tfregimes.diagnostics.dynamics.learning_rate import tuning_factor
from tfregimes.results import collect, load_runs

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a table: N training examples, batch size B."""

    num_train: int
    batch_size: int

    @property
    def name(self) -> str:
        return f"n{self.num_train}_b{self.batch_size}"


@dataclasses.dataclass(frozen=True)
class Setting:
    sizes: tuple[int, ...]  # Table 1's columns N (at the base batch size); the largest is the reference.
    batch_sizes: tuple[int, ...]  # Table 3's columns B (at the largest N); the base batch size is one of them.
    offsets: tuple[int, ...]  # Rows run per column: marked λ × 2^offset.
    seeds: tuple[int, ...]
    epochs: int
    reference_weight_decay: float  # The marked λ of the reference column (largest N, base B).
    base_batch_size: int = 64
    learning_rate: float = 0.1
    momentum: float = 0.9
    ghost_batch_size: int = 64  # Seed 002 §3.1.

    @property
    def reference(self) -> Column:
        return Column(max(self.sizes), self.base_batch_size)

    @property
    def marked_tuning_factor(self) -> float:
        """Eq. 27 at the reference column's marked cell: every marked cell shares it."""
        ref = self.reference
        return tuning_factor(num_train=ref.num_train, learning_rate=self.learning_rate,
                             weight_decay=self.reference_weight_decay, batch_size=ref.batch_size,
                             momentum=self.momentum)

    def marked_exponent(self, column: Column) -> int:
        """j of the column's marked λ = reference λ · 2^j: N·λ/B stays put, so j = log2(B·N_ref / (B_ref·N))."""
        ref = self.reference
        ratio = math.log2(column.batch_size * ref.num_train / (ref.batch_size * column.num_train))
        if ratio != round(ratio):
            raise ValueError(f"{column}: N and B must differ from {ref} by powers of two, so its marked λ is on "
                             f"the grid")
        return int(round(ratio))

    def weight_decay(self, exponent: int) -> float:
        return self.reference_weight_decay * 2.0 ** exponent

    def exponent(self, weight_decay: float) -> int:
        return int(round(math.log2(weight_decay / self.reference_weight_decay)))

    def row_exponents(self, column: Column) -> list[int]:
        marked = self.marked_exponent(column)
        return [marked + offset for offset in self.offsets]

    def column_tuning_factor(self, column: Column, exponent: int) -> float:
        return tuning_factor(num_train=column.num_train, learning_rate=self.learning_rate,
                             weight_decay=self.weight_decay(exponent), batch_size=column.batch_size,
                             momentum=self.momentum)


def setting(smoke: bool) -> Setting:
    if smoke:
        # Two runs (Table 3 reuses the B = 64 column): the pipeline in well under a minute.
        return Setting(sizes=(64, 512), batch_sizes=(64,), offsets=(0,), seeds=(0,), epochs=2,
                       reference_weight_decay=2.5e-3)
    # Table 3 gets one more column, B = 256, beside the shared B = 64 (the budget: every run costs ~20 s of
    # TensorFlow start-up, tracing and export on top of seconds of training).
    return Setting(sizes=(256, 512, 1024, 2048), batch_sizes=(64, 256), offsets=(-2, -1, 0, 1, 2),
                   seeds=(0, 1, 2), epochs=EPOCHS, reference_weight_decay=REFERENCE_WEIGHT_DECAY)


EPOCHS = 20
# The marked λ at N = 2048, B = 64: tuning factor 0.16 (the paper's 10/128 ≈ 0.08 is for 300 epochs; with 20 the
# weights need more angular update per epoch, so the centre is one step higher; each window spans T = 0.04–0.64).
REFERENCE_WEIGHT_DECAY = 5e-3


def train_flags(grid: Setting, column: Column) -> list[str]:
    """The training flags every point of a column shares (`python -m tfregimes.train` flags)."""
    return ["--dataset=fashion_mnist", "--model=scale_invariant_resnet_tiny", "--stem=imagenet",
            f"--ghost_batch_size={grid.ghost_batch_size}", f"--train_subset={column.num_train}", "--augment=none",
            f"--batch_size={column.batch_size}", f"--epochs={grid.epochs}", "--optimizer=sgd",
            f"--learning_rate={grid.learning_rate}", f"--momentum={grid.momentum}", "--lr_schedule=step",
            "--lr_boundaries=50%,75%", "--lr_decay=0.1", "--weight_decay_scope=all", "--diagnostics=angular,elr",
            f"--eval_every={grid.epochs}", "--verbose=0"]


def column_sweep(grid: Setting, column: Column, work_dir: Path, max_parallel: int) -> Sweep:
    """The column's sweep: the window of weight decays around its marked cell, every seed."""
    decays = ",".join(f"{grid.weight_decay(j):.6g}" for j in grid.row_exponents(column))
    return Sweep.of(flag_dict(train_flags(grid, column)), work_dir / column.name, grid=[f"weight_decay={decays}"],
                    seeds=grid.seeds, max_parallel=max_parallel, threads_per_run=1)


def sweep_argv(grid: Setting, column: Column, work_dir: Path, max_parallel: int) -> list[str]:
    """The `python -m tfregimes.sweep` command of a column (what `run_column` runs in-process, and records)."""
    return column_sweep(grid, column, work_dir, max_parallel).command()


def run_column(grid: Setting, column: Column, work_dir: Path, max_parallel: int, tag: str) -> None:
    """Runs (or resumes, or reads back as finished) the column's sweep in this process (`tfregimes.sweep.run_sweep`:
    one TensorFlow start-up for every column); a failed point fails the part."""
    sweep = column_sweep(grid, column, work_dir, max_parallel)
    print(f"[{tag}] {' '.join(sweep.command())}", flush=True)
    sweep.run()


def read_column(grid: Setting, column: Column, work_dir: Path) -> list[dict]:
    """Every run of the column as `tfregimes.results.collect` reads it, with its angular update per epoch (the run's
    history through `tfregimes.results.load_runs`)."""
    sweep_dir = work_dir / column.name
    df = collect([sweep_dir])
    histories = {str(record.run_dir): record for record in load_runs([sweep_dir])[0]}
    records = []
    for _, row in df.iterrows():
        if row["state"] not in ("done", "diverged"):  # A sweep stopped before its end: its finished runs.
            continue
        history = histories[row["run_dir"]].history()  # A run diverged in its first epoch has none.
        if "angular_update" not in history.columns:
            history = pd.DataFrame({"angular_update": []})
        records.append({"num_train": column.num_train, "batch_size": column.batch_size,
                        "weight_decay": float(row["weight_decay"]), "exponent": grid.exponent(row["weight_decay"]),
                        "seed": int(row["seed"]), "diverged": bool(row["diverged"]),
                        "test_accuracy": None if row["diverged"] else float(row["test_accuracy"]),
                        "wall_seconds": float(row["wall_seconds"]),
                        "angular_update": [float(x) if math.isfinite(x) else None
                                           for x in pd.to_numeric(history["angular_update"], errors="coerce")]})
    return records


def dumps(value) -> str:
    """JSON of an analysis: its `tfregimes.analysis` summaries and effects (dataclasses) as objects."""
    def default(item):
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.asdict(item)
        raise TypeError(f"{type(item).__name__} is not JSON serializable")
    return json.dumps(value, default=default)
