"""Seed 004 (Jia & Su 2020) at CPU scale: the shared setting, the sweeps that train it, and reading their runs.

The paper (§7.1) trains ResNet-20 on a 10,000-image CIFAR-10 subset, 5 models per setting, 200 epochs from a learning
rate of 0.1 divided by 10 whenever the training loss plateaus, and finds "the final training loss very small and very
similar across different models". Here (the table below sets the two side by side): `cnn_small` (3×3 convs 32-32-64
with batch norm, 28,842 weights) on a 1,000-image subset of Fashion-MNIST downsampled to 14×14 (2×2 means, written
once as an `npz:` dataset: a quarter of the convolutions' cost, which the per-example Jacobians of γ̂ pay 10,000
times per model), 5 models (seeds) per setting, SGD with the plateau schedule; every model trains until its clean
training loss (one inference-mode pass over the unaugmented training subset, after every epoch) is at most the
target (`--stop_at_train_loss`), so every minimum compared has the same training loss, whatever its augmentation or
batch size; a setting whose runs do not all get there within the epoch cap is not comparable and is shown apart,
never mixed into the τ's. The default batch is the smallest of Scenario III (32 for 1,000 images: the paper's 128 for
10,000, scaled) and, unlike the paper's 4-crop-f, the default has no augmentation: a 4-pixel crop of a 14×14 image is
a far stronger perturbation than of a 32×32 one, and neither crop reaches a near-zero loss here (see the pilot below).
Every model is trained and measured by a sweep with --metrics (`tfregimes.sweep.run_sweep`, in this process; γ̂, the
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

# The full mode's stop and settings, fixed by a pilot: one model per setting (seed 0, 1 thread, the stop read every
# epoch on the clean subset, aimed at 0.005 to see the whole curve, at most 100 epochs), on the 2 shared cores under
# a load of 10-19. Epoch at which the clean training loss first fell to 0.02 / 0.01 (final value if never), and the
# sweep point's wall time (training, the checks and the metrics; the metrics alone took 50-110 s):
#   default (batch 32, no augmentation)  30 / 34 epochs, 206 s (36 epochs)
#   confusion set of 500                49 / 64 epochs, 463 s (100 epochs: 0.0062 at the end)
#   batch 256                           ~88 / never (0.0120 after 100 epochs, the rate never divided), 200 s
#   crop1_flip                          never: 0.108 after 100 epochs, the rate at its 1e-3 floor since epoch 88, 378 s
#   crop4_flip                          never: 0.318 after 100 epochs, at the floor since epoch 53, 274 s
#   fisher regularizer (default)       32 / 34 epochs, 348 s (36 epochs; 8 s an epoch against 2.6 without)
# So the target is 0.02 (the batch-256 models reach it about 30 epochs before the cap of 120; 0.01 would need about
# 110 of them) and no crop reaches it at any affordable cap: the crops are trained with 2 seeds, enough to show their
# numbers apart as not comparable, instead of 5 (saving about 39 min of model time, 20 of wall time). The full mode's
# 39 models at these walls (flip, confusion 250 and batch 128 taken at 40-55 epochs): about 9,700 s of model time,
# 2 at a time: FULL_MODE_ESTIMATE. Every setting of Scenarios I–III at 5 seeds as before (batch 64 and 5-seed crops
# included) would take about 112 min, over the ~90 min budget: hence also Scenario III without batch 64 (32, 128, 256
# still span 8 times the default batch).
TARGET_LOSS = 0.02
MAX_EPOCHS = 120
CONFUSION_SIZES = (0, 250, 500)
AUGMENTS = ("none", "flip", "crop1_flip", "crop4_flip")
FEWER_SEEDS = ("crop1_flip", "crop4_flip")
BATCH_SIZES = (32, 128, 256)
FULL_MODE_ESTIMATE = ("about 85 min (39 models, 2 at a time; a pilot of single models under a load of 10-19 on "
                      "the 2 cores, so less on a quieter machine)")


def setting_table(size: dict) -> list[str]:
    """The setting beside the paper's (§7.1; appendix E; §7.2 for the regularizer) as a markdown table."""
    from tfregimes.results.table import markdown_table
    rows = [
        ["data", "CIFAR-10, a 10,000-image training subset",
         f"Fashion-MNIST at 14×14 (2×2 means), a {size['train_subset']:,}-image subset"],
        ["model", "ResNet-20", " ".join(f"`{flag}`" for flag in size["model"])],
        ["optimizer", "SGD, learning rate 0.1 divided by 10 whenever the training loss plateaus",
         "SGD, momentum 0.9, weight decay 1e-4; learning rate 0.1 divided by 10 after 5 epochs without a 1 % "
         "improvement of the training loss, floor 1e-3"],
        ["epochs", "200", f"until the stop, at most {size['max_epochs']}"],
        ["stop rule", "none (200 epochs); the final training loss is \"very small and very similar\" across models",
         f"clean training loss ≤ {size['target']:g} (inference mode, the unaugmented training subset without the "
         "confusion set, whose loss Scenario I's table shows, checked every epoch: `--stop_at_train_loss`); a "
         "setting whose runs do not all reach it is not comparable and is shown apart"],
        ["seeds", "5 models per setting", f"{len(size['seeds'])} models per setting (seeds "
                                          f"{', '.join(str(s) for s in size['seeds'])})"
         + (f"; {', '.join(size['fewer_seeds'])}: {size['fewer_seeds_count']} (they cannot reach the stop here, "
            "shown apart)" if size["fewer_seeds"] else "")],
        ["Scenario I (confusion set)", "0, 1k, 2k, 3k, 4k, 5k random-label images",
         ", ".join(str(v) for v in size["confusion_sizes"]) + " random-label images"],
        ["Scenario II (augmentation)", "no-aug, flip-only, 1-crop-f, 4-crop-f", ", ".join(size["augments"])],
        ["Scenario III (batch size)", "128, 256, 512, 1024", ", ".join(str(v) for v in size["batch_sizes"])],
        ["defaults", "confusion 0, 4-crop-f, batch 128",
         f"confusion 0, {DEFAULTS['augment']}, batch {size['batch_sizes'][0]}"],
        ["metrics", "γ̂ (N' = T = 100), Fisher Frobenius norm, spectral radius, robustness (appendix D)",
         "the same, on the clean training subset"],
        ["regularizer (§7.2)", "Algorithm 1, α β τ M chosen on validation; ResNet-20, WRN, DenseNet",
         "α 1e-4, β 20, τ 5, M 4 on the default setting, same stop"]]
    return [markdown_table(["", "paper", "here"], rows)]


def sizes(smoke: bool, parallel: int | None = None) -> dict:
    """Every size the parts use; smoke mode checks the pipeline on tiny ones. `parallel`: models trained at once
    (default 1 in smoke mode, 2 in full mode)."""
    if parallel is not None:
        return {**sizes(smoke), "parallel": parallel}
    if smoke:
        return {"train_subset": 128, "max_epochs": 2, "seeds": (0,), "batch_sizes": (32, 64),
                # A loss above chance (ln 10 = 2.3) stops every run after its first epoch: the smoke checks the
                # pipeline (the stop, the compared settings), not a minimum.
                "confusion_sizes": (0, 32), "augments": ("none", "flip"), "target": 3.0, "parallel": 1,
                "fewer_seeds": (), "fewer_seeds_count": 1,
                # A 32-unit MLP: γ̂'s 10,000 per-example gradients of a CNN alone would take most of a minute.
                "model": ["--model=mlp", "--hidden_sizes=32"]}
    return {"train_subset": 1000, "max_epochs": MAX_EPOCHS, "seeds": (0, 1, 2, 3, 4), "batch_sizes": BATCH_SIZES,
            "confusion_sizes": CONFUSION_SIZES, "augments": AUGMENTS, "target": TARGET_LOSS, "parallel": 2,
            "fewer_seeds": FEWER_SEEDS, "fewer_seeds_count": 2,
            "model": ["--model=cnn_small"]}


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
            "--min_lr=1e-3", f"--epochs={size['max_epochs']}", f"--stop_at_train_loss={size['target']}",
            "--stop_check_every=1", "--stop_check_examples=0", f"--eval_every={size['max_epochs']}", "--verbose=0"]


def sweep_argv(name: str, size: dict, work_dir: Path, extra: list[str], seeds: tuple | None = None) -> Sweep:
    """The sweep of one group of models (`extra`: its --grid axes and flags; `seeds`: default size["seeds"]),
    measured with --metrics after training."""
    grid = [argument.removeprefix("--grid=") for argument in extra if argument.startswith("--grid=")]
    fixed = flag_dict([argument for argument in extra if not argument.startswith("--grid=")])
    axes = {axis.partition("=")[0] for axis in grid}
    base = {name: value for name, value in {**flag_dict(base_flags(size, prepare_data(work_dir))), **fixed}.items()
            if name not in axes}  # An axis's values replace the default setting's.
    return Sweep.of(base, work_dir / name, grid=grid,
                    seeds=size["seeds"] if seeds is None else seeds, metrics=METRICS, max_parallel=size["parallel"],
                    threads_per_run=1)


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
    """How a metric ranks the test error over a scenario's runs: τ_b with its CI, the training-loss baseline (τ_b of
    the clean training loss against the test error over the same runs: a metric that ranks no better adds nothing,
    Jiang et al. 2020), τ given the clean training loss, and Jiang et al.'s per-axis mean τ: within a setting (only
    the seed varies; NaN with one seed a setting) and across the settings (within a seed); `groups`: how many groups
    gave each."""
    tau: Effect
    baseline: Effect
    partial: Effect
    within_setting: float
    across_settings: float
    groups: dict[str, int]

    def as_dict(self) -> dict:
        return {"tau": self.tau.as_dict(), "baseline": self.baseline.as_dict(), "partial": self.partial.as_dict(),
                "within_setting": self.within_setting, "across_settings": self.across_settings,
                "groups": self.groups}


def ranking(runs: pd.DataFrame, axis: str) -> dict[str, Ranking]:
    """Each metric's Ranking against the test error over `runs` (the finished runs of a scenario's compared
    settings); the baseline over the runs that have the metric, so the two τ's rest on the same runs."""
    out = {}
    for metric in METRICS:
        measure, label = pd.to_numeric(runs[metric], errors="coerce"), METRIC_LABELS[metric]
        has = measure.notna().to_numpy()
        granulated = granulated_kendall(runs, metric, "test_error", [axis, "seed"])
        out[metric] = Ranking(
            tau=kendall_tau(measure, runs["test_error"], name=f"τ_b({label}, test error) over runs"),
            baseline=kendall_tau(runs["train_loss"][has], runs["test_error"][has],
                                 name="τ_b(train loss, test error) over the same runs"),
            partial=partial_kendall_tau(measure, runs["test_error"], runs["train_loss"],
                                        name=f"τ({label}, test error | train loss)"),
            within_setting=granulated.per_axis["seed"], across_settings=granulated.per_axis[axis],
            groups={"within_setting": granulated.groups["seed"], "across_settings": granulated.groups[axis]})
    return out
