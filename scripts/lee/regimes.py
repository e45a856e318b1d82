"""Seed 000's four regimes at CPU scale, each a sweep over seeds (`tfregimes.sweep.run_sweep`).

The paper (appendix A.2; flags/seed000/cifar10_resnet20_*.cfg) trains ResNet-20 on CIFAR-10 for 300 epochs at
batch 128 (small) and 2048 (large, ×16), with Goyal et al.'s linear scaling and 5 warm-up epochs, the step schedule
(×0.1 at 50 % and 75 % of the run), LARS (trust 0.001), and its method: the large batch kept at the peak rate while
the training loss improves plus extra exploration epochs after it flattens, then a step decay chosen at run time.
Our scale-down (a 2-core CPU): MNIST-1D (4,000 / 1,000 examples, offline), tfregimes' `mlp` (256, 128), batch 32
against batch 1000 (×31.25, near Goyal's ×32), the same number of epochs for every regime, weight decay on all
weights (`exclude_bn`: the MLP has no BN), 5 seeds. The epoch budget (30) was chosen from pilot runs so that the
large batch under the Goyal schedule falls short of the small batch (`setting()` says which pilots).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from pathlib import Path

from sweeps import Sweep, flag_dict

REGIMES = ("small_batch", "large_batch", "lars", "explore")
LABELS = {"small_batch": "small batch", "large_batch": "large batch (Goyal)", "lars": "large batch + LARS",
          "explore": "large batch + extended exploration"}


@dataclasses.dataclass(frozen=True)
class Setting:
    epochs: int
    small_batch: int
    large_batch: int
    learning_rate: float  # The small batch's rate; the large batch's is this × large/small (Goyal et al. §2.1).
    weight_decay: float
    warmup_epochs: int
    lars_learning_rate: float
    flat_window: int
    flat_tolerance: float
    extra_exploration_epochs: int
    decay_interval_epochs: int
    seeds: tuple[int, ...]
    train_subset: int = 0  # 0: all 4,000 training examples.

    @property
    def large_learning_rate(self) -> float:
        return self.learning_rate * self.large_batch / self.small_batch

    @property
    def min_lr(self) -> float:
        # The step schedule's last rate (peak × 0.1²), so no regime ends lower than the Goyal schedule does.
        return self.large_learning_rate * 0.01


def setting(smoke: bool, seed: int) -> Setting:
    if smoke:
        return Setting(epochs=3, small_batch=32, large_batch=256, learning_rate=0.02, weight_decay=5e-4,
                       warmup_epochs=1, lars_learning_rate=10.0, flat_window=1, flat_tolerance=0.5,
                       extra_exploration_epochs=0, decay_interval_epochs=1, seeds=(seed,), train_subset=512)
    # Pilots (one seed each): at 30 epochs batch 1000 under the Goyal schedule reached 64.3 % against 67–68 % for
    # batch 32; at 40 and 60 epochs the two were within a point (68.3 vs 68.4, 69.2 vs 69.1). LARS: η = 10 beat
    # η = 2 (60 epochs) and η = 30 (30 epochs, did not train). Exploration: seed 000's CIFAR-10 flagfile scaled by
    # 30/300 epochs (20 extra epochs → 2, a decay every 30 → 3); the flatness window and tolerance as there.
    return Setting(epochs=30, small_batch=32, large_batch=1000, learning_rate=0.02, weight_decay=5e-4,
                   warmup_epochs=5, lars_learning_rate=10.0, flat_window=5, flat_tolerance=0.01,
                   extra_exploration_epochs=2, decay_interval_epochs=3, seeds=tuple(range(seed, seed + 5)))


def regime_flags(s: Setting) -> dict[str, list[str]]:
    """The training flags of each regime (shared ones first), as the seed 000 flagfiles set them."""
    common = ["--dataset=mnist1d", "--model=mlp", f"--epochs={s.epochs}", "--momentum=0.9",
              f"--weight_decay={s.weight_decay}", "--weight_decay_scope=exclude_bn", "--lr_decay=0.1",
              "--diagnostics=margins", "--verbose=0"] + ([f"--train_subset={s.train_subset}"] if s.train_subset else [])
    step = ["--lr_schedule=step", "--lr_boundaries=50%,75%"]
    large = [f"--batch_size={s.large_batch}", f"--warmup_epochs={s.warmup_epochs}"]
    scaled = [f"--learning_rate={s.learning_rate}", f"--reference_batch_size={s.small_batch}"]
    sgd = [*common, "--optimizer=sgd"]
    return {
        "small_batch": [*sgd, f"--batch_size={s.small_batch}", f"--learning_rate={s.learning_rate}", *step],
        "large_batch": [*sgd, *large, *scaled, *step],
        # LARS' rate multiplies its trust ratio; not scaled with the batch (flags/seed000/*_lars.cfg).
        "lars": [*common, *large, "--optimizer=lars", f"--learning_rate={s.lars_learning_rate}",
                 "--lars_trust_coefficient=0.001", *step],
        "explore": [*sgd, *large, *scaled, "--lr_schedule=explore", f"--flat_window={s.flat_window}",
                    f"--flat_tolerance={s.flat_tolerance}", f"--extra_exploration_epochs={s.extra_exploration_epochs}",
                    "--exploration_decay=step", f"--decay_interval_epochs={s.decay_interval_epochs}",
                    f"--min_lr={s.min_lr:.6g}"],
    }


def sweeps(s: Setting, work_dir: Path) -> dict[str, Sweep]:
    """Each regime's sweep over the seeds, one thread per point."""
    return {name: Sweep.of(flag_dict(flags), work_dir / name, seeds=s.seeds, threads_per_run=1)
            for name, flags in regime_flags(s).items()}


def run_sweeps(s: Setting, work_dir: Path, *, parallel: bool, log_prefix: str = "[lee]") -> dict[str, Sweep]:
    """Runs (or resumes) every regime's sweep, one after the other or (`parallel`) all at once, each from a thread of
    this process (their points forked from one preloaded TensorFlow). A failed point fails the script; its log is in
    its sweep directory."""
    regime_sweeps = sweeps(s, work_dir)
    for sweep in regime_sweeps.values():
        print(f"{log_prefix} {' '.join(sweep.command()[1:])}", flush=True)
    if parallel:
        with concurrent.futures.ThreadPoolExecutor(len(regime_sweeps), thread_name_prefix="regime") as pool:
            for future in [pool.submit(sweep.run) for sweep in regime_sweeps.values()]:
                future.result()
    else:
        for sweep in regime_sweeps.values():
            sweep.run()
    return regime_sweeps
