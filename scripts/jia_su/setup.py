"""Seed 004 (Jia & Su 2020) at CPU scale: the shared setting, the sweeps that train it, and reading their runs.

The paper (§7.1) trains ResNet-20 on a 10,000-image CIFAR-10 subset, 5 models per setting, 200 epochs from a learning
rate of 0.1 divided by 10 whenever the training loss plateaus; defaults confusion size 0, `4-crop-f`, batch 128. Here:
`cnn_small` (3×3 convs 32-32-64 with batch norm, 28,842 weights) on a 1,000-image subset of Fashion-MNIST
downsampled to 14×14 (2×2 means of the 28×28 images, written once as an `npz:` dataset: a quarter of the convolutions'
cost, which the per-example Jacobians of γ̂ pay 10,000 times per model), 3 models (seeds) per setting; SGD with
momentum 0.9, learning rate 0.1 divided by 10 on a plateau (`--lr_schedule=plateau`, patience 5 epochs, relative
threshold 1 %, floor 1e-3), weight decay 1e-4; each model trains until its clean training accuracy (one inference-
mode pass over the unaugmented training subset, checked every epoch) reaches 99.9 % (`--stop_at_train_accuracy`), at
most 80 epochs. The defaults are no confusion set, the smallest batch
of Scenario III (32 for 1,000 images: the paper's 128 for 10,000, scaled) and, unlike the paper's crop4_flip, no
augmentation: a 4-pixel crop of a 14×14 image is a far stronger perturbation than of a 32×32 one, and a first full
attempt with it left the default models at 83 % training accuracy after 60 epochs (learning rate divided three times),
so the scenarios would have compared under-fitted models; without augmentation the network reaches 100 % in about 40
epochs, with a 500-image confusion set in about 50. Every
model is trained and measured by a sweep with --metrics (`tfregimes.sweep.run_sweep`, in this process; γ̂, the
Fisher-based Frobenius norm and spectral radius with N' = T = 100 as appendix D, and robustness, all on the clean
training subset, unaugmented).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from sweeps import Sweep, flag_dict

from tfregimes.analysis import Effect, granulated_kendall, kendall_tau, partial_kendall_tau, summarize
from tfregimes.base.run_files import SWEEP_FILE
from tfregimes.results import collect

METRICS = ("fisher_logdet", "frobenius", "spectral_radius", "robustness")
METRIC_LABELS = {"fisher_logdet": "γ̂ (Fisher log-det)", "frobenius": "Frobenius norm ‖I‖_F²",
                 "spectral_radius": "spectral radius ρ", "robustness": "robustness"}
# What the paper's Figures 1–3 say each metric does in each scenario: True where it tracks the test error.
PAPER_CAPTURES = {"confusion_size": {"fisher_logdet": True, "frobenius": True, "spectral_radius": True,
                                     "robustness": False},
                  "augment": {"fisher_logdet": True, "frobenius": False, "spectral_radius": False,
                              "robustness": False},
                  "batch_size": {"fisher_logdet": True, "frobenius": True, "spectral_radius": True,
                                 "robustness": False}}


def sizes(smoke: bool, parallel: int | None = None) -> dict:
    """Every size the parts use; smoke mode checks the pipeline on tiny ones. `parallel`: models trained at once
    (default 1 in smoke mode, 2 in full mode)."""
    if parallel is not None:
        return {**sizes(smoke), "parallel": parallel}
    if smoke:
        return {"train_subset": 128, "max_epochs": 2, "seeds": (0,), "batch_sizes": (32, 64),
                "confusion_sizes": (0, 32), "augments": ("none", "flip"), "target": 0.999, "parallel": 1,
                # A 32-unit MLP: γ̂'s 10,000 per-example gradients of a CNN alone would take most of a minute.
                "model": ["--model=mlp", "--hidden_sizes=32"]}
    return {"train_subset": 1000, "max_epochs": 80, "seeds": (0, 1, 2), "batch_sizes": (32, 64, 128, 256),
            "confusion_sizes": (0, 250, 500), "augments": ("none", "flip", "crop1_flip", "crop4_flip"),
            "target": 0.999, "parallel": 2, "model": ["--model=cnn_small"]}


DEFAULTS = {"confusion_size": 0, "augment": "none"}  # The batch-size default is the smallest of the scenario.


DATA_FILE = "fashion_mnist_14x14.npz"


def downsample_2x2(images: np.ndarray) -> np.ndarray:
    """NHWC uint8 images with each 2×2 block of pixels replaced by its mean, rounded to uint8."""
    n, height, width, channels = images.shape
    blocks = images.reshape(n, height // 2, 2, width // 2, 2, channels).astype(np.float32)
    return np.rint(blocks.mean(axis=(2, 4))).astype(np.uint8)


def prepare_data(work_dir: Path) -> Path:
    """Fashion-MNIST (tfregimes' `fashion_mnist` source) with each image's 2×2 blocks averaged to 14×14, uint8, as
    an npz file in `work_dir` (written once, atomically)."""
    path = work_dir / DATA_FILE
    if path.exists():
        return path
    from tfregimes.data.base import LoadRequest
    from tfregimes.data.fashion_mnist import fashion_mnist
    arrays = fashion_mnist(LoadRequest())
    half = downsample_2x2
    work_dir.mkdir(parents=True, exist_ok=True)
    partial = work_dir / f".{DATA_FILE}.partial.npz"
    np.savez(partial, x_train=half(arrays.x_train), y_train=arrays.y_train, x_test=half(arrays.x_test),
             y_test=arrays.y_test, num_classes=np.int64(arrays.num_classes))
    partial.replace(path)
    return path


def base_flags(size: dict, data: Path) -> list[str]:
    """The training flags every model shares (the default setting)."""
    return [f"--dataset=npz:{data}", "--normalization=per_channel", *size["model"],
            f"--train_subset={size['train_subset']}",
            f"--batch_size={size['batch_sizes'][0]}", f"--augment={DEFAULTS['augment']}",
            "--optimizer=sgd", "--momentum=0.9", "--learning_rate=0.1", "--weight_decay=1e-4",
            "--lr_schedule=plateau", "--plateau_patience=5", "--plateau_factor=0.1", "--plateau_threshold=0.01",
            "--min_lr=1e-3", f"--epochs={size['max_epochs']}", f"--stop_at_train_accuracy={size['target']}",
            f"--eval_every={size['max_epochs']}", "--verbose=0"]


def sweep_argv(name: str, size: dict, work_dir: Path, extra: list[str]) -> Sweep:
    """The sweep of one group of models (`extra`: its --grid axes and flags), measured with --metrics after
    training."""
    grid = [argument.removeprefix("--grid=") for argument in extra if argument.startswith("--grid=")]
    fixed = flag_dict([argument for argument in extra if not argument.startswith("--grid=")])
    axes = {axis.partition("=")[0] for axis in grid}
    base = {name: value for name, value in {**flag_dict(base_flags(size, prepare_data(work_dir))), **fixed}.items()
            if name not in axes}  # An axis's values replace the default setting's.
    return Sweep.of(base, work_dir / name, grid=grid,
                    seeds=size["seeds"], metrics=METRICS, max_parallel=size["parallel"], threads_per_run=1)


def run_sweeps(sweeps: dict[str, Sweep], log) -> None:
    for sweep in sweeps.values():
        log(" ".join(sweep.command()))
        sweep.run()  # A failed point fails the part: its log is in the sweep directory.


def read_runs(sweep_dirs: list[Path]) -> pd.DataFrame:
    """Every run of the sweeps (tfregimes.results.collect: every flag, the stop and the confusion set's numbers),
    with `test_error` (%) and the stop's outcome under the names the parts use."""
    df = collect([d for d in sweep_dirs if (Path(d) / SWEEP_FILE).exists()])
    if df.empty:
        return df
    df["test_error"] = 100.0 * (1.0 - df["test_accuracy"])
    df["reached_target"] = df["stop/reached_target"]
    df["stopped_at_epoch"] = df["stop/stopped_at_epoch"]
    return df


def done_runs(df: pd.DataFrame, column: str, values: list) -> pd.DataFrame:
    """The finished runs whose `column` is one of `values`: the runs a part's summaries and effects rest on."""
    return df[df[column].isin(values) & (df["state"] == "done")]


def per_setting(df: pd.DataFrame, axis: str, order: list) -> list[dict]:
    """Per setting of `axis`, in `order`, over the finished runs: how many, how many reached the stop, their epochs,
    and for each number the tables show its Summary (mean, sample std, n) with the values and their seeds."""
    out = []
    for value in order:
        runs = done_runs(df, axis, [value])
        entry = {"setting": value, "n": int(len(runs)), "reached_target": int(runs["reached_target"].sum()),
                 "epochs": [int(e) for e in runs["epochs_run"]]}
        for column in ("test_error", "train_loss", "train_accuracy", "last_epoch_train_loss", "confusion_loss",
                       *METRICS):
            values = pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=float)
            kept = np.isfinite(values)
            entry[column] = {**dataclasses.asdict(summarize(values[kept])), "values": values[kept].tolist(),
                             "seeds": [int(s) for s in runs["seed"].to_numpy()[kept]]}
        out.append(entry)
    return out


def cell(entry: dict, digits: int = 4) -> str:
    """A table's mean ± std cell for one setting's column (`summarize(...).text`)."""
    return summarize(entry["values"]).text(digits=digits)


@dataclasses.dataclass(frozen=True)
class Ranking:
    """How a metric ranks the test error over a scenario's runs: τ_b with its CI, τ given the clean training loss,
    and Jiang et al.'s per-axis mean τ: within a setting (only the seed varies; NaN with one seed a setting) and
    across the settings (within a seed); `groups`: how many groups gave each."""
    tau: Effect
    partial: Effect
    within_setting: float
    across_settings: float
    groups: dict[str, int]

    def as_dict(self) -> dict:
        return {"tau": self.tau.as_dict(), "partial": self.partial.as_dict(), "within_setting": self.within_setting,
                "across_settings": self.across_settings, "groups": self.groups}


def baseline(runs: pd.DataFrame) -> Effect:
    """The training-loss baseline: τ_b of the clean training loss against the test error over `runs`. A measure
    that ranks the test error no better than the training loss does adds nothing (Jiang et al. 2020)."""
    return kendall_tau(runs["train_loss"], runs["test_error"], name="τ_b(train loss, test error) over runs")


def ranking(runs: pd.DataFrame, axis: str) -> dict[str, Ranking]:
    """Each metric's Ranking against the test error over `runs` (the finished runs of a scenario)."""
    out = {}
    for metric in METRICS:
        measure, label = pd.to_numeric(runs[metric], errors="coerce"), METRIC_LABELS[metric]
        granulated = granulated_kendall(runs, metric, "test_error", [axis, "seed"])
        out[metric] = Ranking(
            tau=kendall_tau(measure, runs["test_error"], name=f"τ_b({label}, test error) over runs"),
            partial=partial_kendall_tau(measure, runs["test_error"], runs["train_loss"],
                                        name=f"τ({label}, test error | train loss)"),
            within_setting=granulated.per_axis["seed"], across_settings=granulated.per_axis[axis],
            groups={"within_setting": granulated.groups["seed"], "across_settings": granulated.groups[axis]})
    return out
