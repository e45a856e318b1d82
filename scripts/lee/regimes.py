"""Seed 000's regimes at CPU scale, each a sweep over seeds (`tfregimes.sweep.run_sweep`), every run stopped at the
same clean training loss.

The paper (appendix A.2; flags/seed000/cifar10_resnet20_*.cfg) trains ResNet-20 on CIFAR-10 for 300 epochs at
batch 128 (small) and 2048 (large, ×16), with Goyal et al.'s linear scaling and 5 warm-up epochs, the step schedule
(×0.1 at 50 % and 75 % of the run), LARS (trust 0.001), and its method: the large batch kept at the peak rate while
the training loss improves plus extra exploration epochs after it flattens, then a step decay chosen at run time.
Our scale-down (a 2-core CPU): MNIST-1D (4,000 / 1,000 examples, offline), tfregimes' `mlp` (256, 128), batch 32
against batch 1000 (×31.25, near Goyal's ×32), weight decay on all weights (`exclude_bn`: the MLP has no BN),
5 seeds. Every run stops at the first epoch whose clean training loss (inference mode, the whole training set) is
at most the target, or at the epoch cap: the step schedules decay at fixed epochs (50 % and 75 % of a nominal
budget) and then train on at their last rate until the target, so the large batch is never compared under-trained;
minima are compared only between runs that reached the target (`tfregimes.analysis.same_stop_target`).
LARS is tuned as the others were chosen: a grid of learning rates × warm-up lengths, 3 seeds each, trained on 80 %
of the training set to the same target and ranked by mean accuracy on the held-out 20 % (`--validation_split`);
the chosen point then runs on the whole training set with the 5 seeds of every other regime.
Extended exploration runs at 4 lengths of the extra exploration (appendix A.1's question); its regime in the
comparisons is the longest, seed 000's own 20 extra epochs.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from pathlib import Path

from sweeps import Sweep, flag_dict

REGIMES = ("small_batch", "large_batch", "lars", "explore")  # The compared regimes; `explore` at `main_length`.
LABELS = {"small_batch": "small batch", "large_batch": "large batch (Goyal)", "lars": "large batch + LARS (tuned)",
          "explore": "large batch + extended exploration"}
LARS_TUNING = "lars_tuning"  # The sweep that chooses LARS' rate and warm-up on the validation split.


@dataclasses.dataclass(frozen=True)
class Setting:
    budget_epochs: int  # The step schedules' nominal budget: ×0.1 after 50 % and 75 % of it.
    max_epochs: int  # The cap of every run; a run that has not reached the target by then did not reach it.
    stop_loss: float  # --stop_at_train_loss: the clean training loss every run trains to.
    small_batch: int
    large_batch: int
    learning_rate: float  # The small batch's rate; the large batch's is this × large/small (Goyal et al. §2.1).
    weight_decay: float
    warmup_epochs: int
    flat_window: int
    flat_tolerance: float
    exploration_lengths: tuple[int, ...]  # --extra_exploration_epochs of the exploration sweep.
    main_length: int  # The exploration length compared with the other regimes.
    decay_interval_epochs: int
    lars_learning_rates: tuple[float, ...]
    lars_warmups: tuple[int, ...]
    lars_seeds: tuple[int, ...]
    validation_split: float
    seeds: tuple[int, ...]
    train_subset: int = 0  # 0: all 4,000 training examples.
    margin_every: int = 1  # --diagnostics_every of the margins diagnostic.

    @property
    def large_learning_rate(self) -> float:
        return self.learning_rate * self.large_batch / self.small_batch

    @property
    def boundaries(self) -> tuple[float, float]:
        return 0.5 * self.budget_epochs, 0.75 * self.budget_epochs

    @property
    def min_lr(self) -> float:
        # Exploration decays once (×0.1, the step schedule's first decay) and trains on at that rate to the target:
        # a second ×0.1 leaves a run that decayed early too slow to reach it within the cap (pilots in setting()).
        return self.large_learning_rate * 0.1


def setting(smoke: bool, seed: int) -> Setting:
    if smoke:
        return Setting(budget_epochs=3, max_epochs=3, stop_loss=0.05, small_batch=32, large_batch=256,
                       learning_rate=0.02, weight_decay=5e-4, warmup_epochs=1, flat_window=1, flat_tolerance=0.9,
                       exploration_lengths=(0, 1), main_length=0, decay_interval_epochs=1,
                       lars_learning_rates=(10.0,), lars_warmups=(1,), lars_seeds=(seed,), validation_split=0.25,
                       seeds=(seed,), train_subset=512)
    # Pilots (seed 0, one run each, 2 shared cores, ~0.3–1 s an epoch for batch 1000, ~1 s for batch 32):
    # - old rule, 30 epochs: batch 1000 under Goyal reached clean train loss 0.39 and 64.3 % against 0.10 and 67–68 %
    #   for batch 32: under-trained. At 60 epochs (decays at 30, 45) the two were within a point (69.2 vs 69.1).
    # - batch 32, decays at 20 and 30 (budget 40): clean loss 0.128 at epoch 19, 0.050 at epoch 22.
    # - batch 1000, decays at 20 and 30: clean loss 0.299 at epoch 19, 0.100 at 31, then 0.081 at epoch 59 at the
    #   last rate (0.00625): it never reaches 0.05, so the target is 0.1.
    # - batch 1000 at the peak rate 0.625: the epoch loss falls ~45 % every 5 epochs from warm-up to ~0.015 at epoch
    #   45 (1.92 at 5, 0.31 at 20, 0.096 at 29, 0.030 at 37), then rises and falls by noise: it never flattens by
    #   seed 000's 1 % tolerance, and under the fixed rule (a rise is not flat) the controller never decayed in 60
    #   epochs. Only the slow fall out of warm-up (27–31 % over the 5 epochs after it) is "flat" at a tolerance of
    #   0.5, so the controller decides at epoch ~6 and the exploration length sets the decay epoch (≈ 6 + extra).
    #   At 0.0625 after the decay the loss went from 0.48 to 0.11 in 9 epochs (the Goyal run after its first decay).
    # - LARS (trust 0.001, decays at 20 and 30): η = 5 flattened at clean loss 0.70, η = 20 blew up (loss 13 at
    #   epoch 10) and ended at 1.12 in 60 epochs; η = 10 (decays at 30 and 45) reached 0.35. The grid spans 4–20,
    #   with 5 and 15 warm-up epochs (a longer warm-up for the rates that blow up).
    return Setting(budget_epochs=40, max_epochs=100, stop_loss=0.1, small_batch=32, large_batch=1000,
                   learning_rate=0.02, weight_decay=5e-4, warmup_epochs=5, flat_window=5, flat_tolerance=0.5,
                   exploration_lengths=(0, 5, 10, 20), main_length=20, decay_interval_epochs=3,
                   lars_learning_rates=(4.0, 7.0, 10.0, 14.0, 20.0), lars_warmups=(5, 15),
                   lars_seeds=(seed, seed + 1, seed + 2),
                   validation_split=0.2, seeds=tuple(range(seed, seed + 5)))


def common_flags(s: Setting) -> list[str]:
    return (["--dataset=mnist1d", "--model=mlp", f"--epochs={s.max_epochs}", "--momentum=0.9",
             f"--weight_decay={s.weight_decay}", "--weight_decay_scope=exclude_bn", "--lr_decay=0.1",
             f"--stop_at_train_loss={s.stop_loss}", "--stop_check_examples=0", "--verbose=0"]
            + ([f"--train_subset={s.train_subset}"] if s.train_subset else []))


def lars_flags(s: Setting, learning_rate: float | None = None, warmup: int | None = None) -> list[str]:
    """LARS (its rate multiplies the trust ratio; not scaled with the batch, flags/seed000/*_lars.cfg); without a
    rate and warm-up, the tuning sweep's grid supplies them."""
    return [f"--batch_size={s.large_batch}", "--optimizer=lars", "--lars_trust_coefficient=0.001",
            *step_flags(s), *([f"--learning_rate={learning_rate:g}"] if learning_rate is not None else []),
            *([f"--warmup_epochs={warmup}"] if warmup is not None else [])]


def step_flags(s: Setting) -> list[str]:
    return ["--lr_schedule=step", f"--lr_boundaries={s.boundaries[0]:g},{s.boundaries[1]:g}"]


def regime_flags(s: Setting, lars: tuple[float, int] | None = None) -> dict[str, list[str]]:
    """The training flags of each regime's sweep (shared ones first), as the seed 000 flagfiles set them; `lars`:
    the tuned (rate, warm-up), without which there is no `lars` sweep yet."""
    margins = ["--diagnostics=margins", f"--diagnostics_every={s.margin_every}"]
    large = [f"--batch_size={s.large_batch}", f"--warmup_epochs={s.warmup_epochs}"]
    scaled = [f"--learning_rate={s.learning_rate}", f"--reference_batch_size={s.small_batch}"]
    sgd = [*common_flags(s), *margins, "--optimizer=sgd"]
    out = {
        "small_batch": [*sgd, f"--batch_size={s.small_batch}", f"--learning_rate={s.learning_rate}", *step_flags(s)],
        "large_batch": [*sgd, *large, *scaled, *step_flags(s)],
        # The exploration sweep's grid sets --extra_exploration_epochs.
        "explore": [*sgd, *large, *scaled, "--lr_schedule=explore", f"--flat_window={s.flat_window}",
                    f"--flat_tolerance={s.flat_tolerance}", "--exploration_decay=step",
                    f"--decay_interval_epochs={s.decay_interval_epochs}", f"--min_lr={s.min_lr:.6g}"],
        # No diagnostics: the tuning reads only the held-out accuracy.
        LARS_TUNING: [*common_flags(s), *lars_flags(s), f"--validation_split={s.validation_split}"],
    }
    if lars is not None:
        out["lars"] = [*common_flags(s), *margins, *lars_flags(s, *lars)]
    return out


def sweeps(s: Setting, work_dir: Path, lars: tuple[float, int] | None = None) -> dict[str, Sweep]:
    """Each regime's sweep over the seeds (the tuning sweep over its grid and 3 seeds), one thread per point."""
    grids = {"explore": [f"extra_exploration_epochs={','.join(map(str, s.exploration_lengths))}"],
             LARS_TUNING: [f"learning_rate={','.join(f'{v:g}' for v in s.lars_learning_rates)}",
                           f"warmup_epochs={','.join(map(str, s.lars_warmups))}"]}
    parallel = {"explore": 2, LARS_TUNING: 2, "lars": 2}  # The long sweeps run two points at once.
    return {name: Sweep.of(flag_dict(flags), work_dir / name, grid=grids.get(name, ()),
                           seeds=s.lars_seeds if name == LARS_TUNING else s.seeds,
                           max_parallel=parallel.get(name, 1) if len(s.seeds) > 1 else 1, threads_per_run=1)
            for name, flags in regime_flags(s, lars).items()}


def run_all(named: dict[str, Sweep], *, parallel: bool, log_prefix: str = "[lee]") -> None:
    """Runs (or resumes) the sweeps, one after the other or (`parallel`) all at once, each from a thread of this
    process (their points forked from one preloaded TensorFlow). A failed point fails the script; its log is in its
    sweep directory."""
    for sweep in named.values():
        print(f"{log_prefix} {' '.join(sweep.command()[1:])}", flush=True)
    if not parallel:
        for sweep in named.values():
            sweep.run()
        return
    with concurrent.futures.ThreadPoolExecutor(len(named), thread_name_prefix="regime") as pool:
        for future in [pool.submit(sweep.run) for sweep in named.values()]:
            future.result()
