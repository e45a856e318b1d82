"""Plants known bugs (textual mutants) one at a time and runs the tests that should catch each; lists survivors.

    python scripts/mutate.py                 # every mutant
    python scripts/mutate.py --only f1 lars  # mutants whose name contains one of these words
    python scripts/mutate.py --list

The tracked files are copied to a temporary directory once; each mutant edits one file there, runs its tests
(`python -m pytest -x -q`, with that copy first on PYTHONPATH) and restores the file, so the working tree is never
touched. A mutant whose text is not found is reported as stale (the code moved: update the table). Exit status 1
when a mutant survives or is stale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]


class Mutant(NamedTuple):
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments


MUTANTS = (
    # Issue 11 (a): the ImageNet recipe's constants (seed 000 A.2).
    Mutant("imagenet brightness", "tfregimes/data/augmentation.py", "32.0 / 255.0", "48.0 / 255.0",
           ("tests/data/test_data.py", "-k", "recipe_with")),
    Mutant("imagenet hue", "tfregimes/data/augmentation.py", "IMAGENET_HUE_DELTA = 0.1", "IMAGENET_HUE_DELTA = 0.2",
           ("tests/data/test_data.py", "-k", "recipe_with")),
    Mutant("imagenet resize range", "tfregimes/data/augmentation.py", "(256, 384)", "(256, 352)",
           ("tests/data/test_data.py", "-k", "recipe_with")),
    # (b): weight decay applied twice under LARS (coupled in the model and LARS' own).
    Mutant("lars decay twice", "tfregimes/training/phases.py",
           'return 0.0 if phase.optimizer == "lars" else config.weight_decay', "return config.weight_decay",
           ("tests/optim/test_optim.py", "-k", "trainer_decays_once")),
    Mutant("lars ignores the scope", "tfregimes/optim/lars.py", "if self._decayed[index] else 0.0",
           "if self._adapted[index] else 0.0", ("tests/optim/test_optim.py", "-k", "decays_exactly")),
    Mutant("lars epsilon differs", "tfregimes/optim/optimizers.py",
           "trust_coefficient: float = 0.001, epsilon: float = 1e-9",
           "trust_coefficient: float = 0.001, epsilon: float = 1e-8", ("tests/optim/test_optim.py", "-k", "epsilon")),
    # (c): Keskar's networks.
    Mutant("f1 three hidden layers", "tfregimes/models/keskar.py", "hidden_sizes=(512,) * 5", "hidden_sizes=(512,) * 3",
           ("tests/models/test_models.py", "-k", "keskar and f1")),
    Mutant("c1 first dense shrunk", "tfregimes/models/keskar.py", "_dense_bn_relu(x, 384,", "_dense_bn_relu(x, 256,",
           ("tests/models/test_models.py", "-k", "keskar and c1")),
    Mutant("c2 missing a conv", "tfregimes/models/keskar.py", "(256, 0.4), (256, 0.4), (256, 0.0)",
           "(256, 0.4), (256, 0.0)", ("tests/models/test_models.py", "-k", "keskar and c2")),
    # Item 1: conservative training.
    Mutant("proximal one inner step", "tfregimes/steps/proximal.py", "for inner_step in range(self.steps):",
           "for inner_step in range(1):", ("tests/steps/test_regularized_steps.py", "-k", "adam_takes")),
    Mutant("proximal term sign", "tfregimes/steps/proximal.py", "(w - w0) for g, w, w0", "(w0 - w) for g, w, w0",
           ("tests/steps/test_regularized_steps.py", "-k", "adam_takes")),
    Mutant("proximal schedule not scaled", "tfregimes/training/trainer.py",
           'steps_per_epoch * getattr(model, "optimizer_steps_per_batch", 1)', "steps_per_epoch",
           ("tests/steps/test_regularized_steps.py", "-k", "schedules_count")),
    # Item 2: the Fisher regularizer.
    Mutant("fisher loss on sub-batches", "tfregimes/steps/fisher.py", "has_moving_statistics = any(is_float)",
           "has_moving_statistics = False",
           ("tests/steps/test_regularized_steps.py", "-k", "beta_zero_is_the_plain_step_with")),
    # Item 7: boundaries as shares of the run.
    Mutant("share read as tenths", "tfregimes/optim/schedules.py", "float(b[:-1]) / 100", "float(b[:-1]) / 10",
           ("tests/cli/test_train_flags.py", "-k", "shares_follow")),
    # Items 3, 4: flagfiles and metrics.
    Mutant("seed 001 per-pixel", "flags/seed001/c7_two_phase.cfg", "--normalization=per_channel",
           "--normalization=per_pixel", ("tests/cli/test_train_flags.py", "-k", "shipped and c7_two_phase")),
    Mutant("seed 000 decays BN", "flags/seed000/cifar10_resnet20_base.cfg", "\n--weight_decay_scope=exclude_bn\n",
           "\n--weight_decay_scope=all\n", ("tests/cli/test_train_flags.py", "-k", "shipped and cifar10_resnet20")),
    Mutant("robustness frobenius default", "tfregimes/diagnostics/minimum/robustness.py",
           'def input_jacobian_norms(model: keras.Model, inputs: np.ndarray, *, norm: str = "spectral"',
           'def input_jacobian_norms(model: keras.Model, inputs: np.ndarray, *, norm: str = "frobenius"',
           ("tests/diagnostics/test_minimum_metrics.py", "-k", "robustness_of_a_linear")),
    Mutant("tuning factor skips loss scaling", "tfregimes/diagnostics/adapters/callbacks.py",
           'inner = getattr(optimizer, "inner_optimizer", optimizer)', "inner = optimizer",
           ("tests/diagnostics/test_training_diagnostics.py", "-k", "tuning")),
    Mutant("tuning factor ignores decoupled decay", "tfregimes/diagnostics/dynamics/learning_rate.py",
           "(weight_decay / (1.0 - momentum) + decoupled_weight_decay)", "(weight_decay / (1.0 - momentum))",
           ("tests/diagnostics/test_training_diagnostics.py", "-k", "tuning")),
    Mutant("vgg13 published count off by one", "tfregimes/models/published_params.py", "9_416_010", "9_416_011",
           ("tests/models/test_models.py", "-k", "publication and vgg13")),
)


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                             text=True, check=True)
    return [line for line in listing.stdout.splitlines() if (REPO / line).is_file()]


def run_mutant(mutant: Mutant, copy: Path, timeout: float) -> tuple[str, float]:
    target = copy / mutant.path
    original = target.read_text()
    if original.count(mutant.old) != 1:
        return "stale", 0.0
    started = time.monotonic()
    target.write_text(original.replace(mutant.old, mutant.new))
    try:
        env = {**os.environ, "PYTHONPATH": str(copy), "TF_CPP_MIN_LOG_LEVEL": "2"}
        completed = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider",
                                    *mutant.tests], cwd=copy, env=env, capture_output=True, text=True,
                                   timeout=timeout)
        if completed.returncode == 5:  # No test collected: the selection is wrong, not a catch.
            return "no tests", time.monotonic() - started
        return ("killed" if completed.returncode else "SURVIVED"), time.monotonic() - started
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started
    finally:
        target.write_text(original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=(), help="run the mutants whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant's tests")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or any(word in m.name for word in args.only)]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:40s} {mutant.path}  [{' '.join(mutant.tests)}]")
        return 0
    bad = 0
    with tempfile.TemporaryDirectory(prefix="tfregimes-mutants-") as scratch:
        copy = Path(scratch)
        for name in tracked_files():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
        for mutant in chosen:
            outcome, seconds = run_mutant(mutant, copy, args.timeout)
            bad += outcome != "killed"
            print(f"{outcome:9s} {seconds:6.1f} s  {mutant.name}  ({mutant.path})", flush=True)
    print(f"{len(chosen) - bad} of {len(chosen)} mutants killed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
