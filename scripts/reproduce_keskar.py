"""python scripts/reproduce_keskar.py [--part=PART ...] [--smoke] [--output=DIR]

Reproduces seed 003 (Keskar et al. 2017, "On Large-Batch Training for Deep Learning: Generalization Gap and Sharp
Minima") and writes docs/results/keskar/: one section per part (`<part>.md`, its JSON and figures) and README.md,
which gathers the sections that exist, so a part can be rerun alone. Every run is made by a sweep in this process
(`tfregimes.sweep.run_sweep`: training to a clean training-loss target with `--stop_at_train_loss`, then
`tfregimes.evaluate --metrics=sharpness`); the parts share the SB/LB sweep, which a later part reuses.

- `table`: Tables 2–4 (SB vs LB: accuracy, ε-sharpness in the full space and a random 100-dim subspace at
  ε = 1e-3 and 5e-4, weight norm, sharpness with the box scaled to the weights) and Figure 3 (loss and accuracy
  along the SB→LB line).
- `curves`: Figure 2, training and test accuracy per epoch of SB and LB (the table's runs).
- `batch_size`: Figure 4, sharpness and test accuracy against the batch size, SB to LB.
- `remedies`: Table 7, LB with conservative (proximal) training; Table 6 (augmentation) has no F-network row.

`--smoke` runs each part's whole pipeline on tiny sizes (digits, a 16-unit MLP, 2 epochs) for the test suite.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from keskar import batch_size, curves, remedies, table  # noqa: E402
from keskar.common import TARGET_ACCURACY, setting, setting_table  # noqa: E402
from reproduction import define_common_flags, part_sections, run_parts, start  # noqa: E402
from reproduction import write_page as write_page_of_parts  # noqa: E402

PARTS = {"table": table.run, "curves": curves.run, "batch_size": batch_size.run, "remedies": remedies.run}
FLAGS = flags.FLAGS


def define_flags() -> None:
    define_common_flags("keskar", PARTS, "Sweep directories; a rerun resumes them and reuses finished runs.")
    flags.DEFINE_integer("seed", 0, "The first of the seeds (each seed: an initialization and a training subset).")


# What every part's numbers share, and how far they are from the paper's setting.
READING = """\
**Setting, beside the paper's.**

{table}

**Training to a target.** Minima compare at equal training loss: every run stops at the first epoch whose clean
training loss (one inference-mode pass over a fixed 10,000-example sample of the unaugmented training set, checked
every epoch) is at most {target:g} (`--stop_at_train_loss`); `metrics.json`'s `stop` says whether and when. The
target is the lowest loss LB 6,000 reaches in the epochs the whole page can afford on 2 shared CPU cores: a
training accuracy of ~{accuracy} %, short of the paper's ~99–100 %.

**Sharpness** is `tfregimes.evaluate --metrics=sharpness` at its defaults: the paper's ε = 1e-3 and 5e-4, full space
and one random 100-dimensional subspace (the same for every run), 10 L-BFGS-B iterations, on 2,048 training
examples. Batch norm is evaluated with its moving statistics (inference mode); the paper evaluates with batch
statistics, which normalize part of any weight perturbation away. So the values are not the paper's (its Table 4,
F1 in a 100-dim subspace: SB 0.11 / LB 9.22 at ε = 1e-3, 0.05 / 9.17 at 5e-4) and only comparisons between runs of
this page mean something. The table part says how A is scaled and how much of the ratio the weights' scale makes.

**Verdicts.** Each claim gets one word of `tfregimes.analysis.verdict`: supports / contradicts if the 95 % CI of its
effect lies wholly on the claimed / the other side, inconclusive if it includes 0, not comparable if the runs did
not all reach the same stop target or there are fewer than 3 per side; the effect, its CI and the rule are printed
with every claim.
"""


def full_mode_minutes(output: Path) -> float:
    """The parts' recorded wall times added up (each part's JSON keeps the invocation that trained it)."""
    return sum(json.loads((output / f"{part}.json").read_text()).get("invocation", {}).get("minutes", math.nan)
               for part in PARTS if (output / f"{part}.json").exists())


def write_page(output: Path, smoke: bool, seed: int) -> None:
    """README.md: the title, the setting beside the paper's, how to read the numbers, the full mode's wall time and
    every part's section that exists, in PARTS' order."""
    config = setting(smoke, seed)
    reading = READING.format(table="\n".join(setting_table(config)), target=config.target_loss,
                             accuracy=TARGET_ACCURACY)
    wall = (f"Wall time of the whole run (every part, training included) on this machine's 2 shared CPU cores: "
            f"{full_mode_minutes(output):.0f} min.")
    write_page_of_parts(output, "Seed 003 (Keskar et al. 2017): SB against LB on F1",
                        ["Made by `scripts/reproduce_keskar.py`; each section gives its commands and wall time. "
                         + wall, "", reading], part_sections(output, PARTS), PARTS)


def main(argv):
    output, work_dir, command = start("keskar", argv)
    run_parts(FLAGS.part, lambda part: PARTS[part](output, smoke=FLAGS.smoke, seed=FLAGS.seed, command=command,
                                                   work_dir=work_dir, train=FLAGS.train),
              lambda: write_page(output, FLAGS.smoke, FLAGS.seed), output)


if __name__ == "__main__":
    define_flags()
    app.run(main)
