"""python scripts/reproduce_keskar.py [--part=PART ...] [--smoke] [--output=DIR]

Reproduces seed 003 (Keskar et al. 2017, "On Large-Batch Training for Deep Learning: Generalization Gap and Sharp
Minima") at CPU scale and writes docs/results/keskar/: one section per part (`<part>.md`, its JSON and figures) and
README.md, which gathers the sections that exist, so a part can be rerun alone. Every run is made by a
sweep in this process (`tfregimes.sweep.run_sweep`: training to a target accuracy with `--stop_at_train_accuracy`, then
`tfregimes.evaluate --metrics=sharpness`); the parts share the SB/LB sweep, which a later part reuses.

- `table`: Tables 2–4 (SB vs LB: accuracy, ε-sharpness in the full space and a random 100-dim subspace at
  ε = 1e-3 and 5e-4, weight norm) and Figure 3 (loss and accuracy along the SB→LB line).
- `batch_size`: Figure 4, sharpness and test accuracy against the batch size, 64 to LB.
- `remedies`: Tables 6–7, LB with data augmentation and LB with conservative (proximal) training.

`--smoke` runs each part's whole pipeline on tiny sizes (digits, a 16-unit MLP, 2 epochs) for the test suite.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from keskar import batch_size, remedies, table  # noqa: E402
from reproduction import define_common_flags, part_sections, run_parts, start  # noqa: E402
from reproduction import write_page as write_page_of_parts  # noqa: E402

PARTS = {"table": table.run, "batch_size": batch_size.run, "remedies": remedies.run}
FLAGS = flags.FLAGS


def define_flags() -> None:
    define_common_flags("keskar", PARTS, "Sweep directories; a rerun resumes them and reuses finished runs.")
    flags.DEFINE_integer("seed", 0, "The first of the seeds (each seed: an initialization and a training subset).")


# What every part's numbers share, and how far they are from the paper's setting.
READING = """\
**Scale.** Seed 003's F1 on MNIST (60,000 examples, LB 6,000, ~23 × SB) is out of reach of 2 shared CPU cores
next to sharpness and interpolation: here F1 at a quarter of its width (`f1_narrow`, 5 batch-normalized ReLU layers of
128; 168,458 weights instead of 1,460,234) on a fixed 10,000-example subset of Fashion-MNIST (MNIST needs a
download), so LB is 1,000 (~4 × SB); at most 40 epochs per run. Adam at its default rate 1e-3, constant.

**Training to a target.** As the paper trains every network to ~99–100 % training accuracy, each run stops at the
first epoch whose clean training accuracy (one full pass in inference mode over the unaugmented training subset,
checked every epoch) reaches 99 % (`--stop_at_train_accuracy=0.99`); `metrics.json`'s `stop` says whether and when.
The tables' training accuracy is that same pass at the end, so a run that reached the target shows at least 99 %.

**Sharpness** is `tfregimes.evaluate --metrics=sharpness` at its defaults: the paper's ε = 1e-3 and 5e-4, full space
and one random 100-dimensional subspace (the same for every run), 10 L-BFGS-B iterations, on 2,048 training
examples. Batch norm is evaluated with its moving statistics (inference mode); the paper evaluates with batch
statistics, which normalize part of any weight perturbation away. So the values here are far larger than the
paper's (its Table 4, F1 in a 100-dim subspace: SB 0.11 / LB 9.22 at ε = 1e-3, 0.05 / 9.17 at 5e-4) and only
comparisons between runs of this page mean something. The box ε(|x_i| + 1) grows with the weights, so each table
gives the weight norm ‖x‖₂ of the minimum too.
"""


def write_page(output: Path) -> None:
    """README.md: the title, how to read the numbers, and every part's section that exists, in PARTS' order."""
    write_page_of_parts(output, "Seed 003 (Keskar et al. 2017) at CPU scale",
                        ["Made by `scripts/reproduce_keskar.py`; each section gives its commands and wall time.", "",
                         READING], part_sections(output, PARTS), PARTS)


def main(argv):
    output, work_dir, command = start("keskar", argv)
    run_parts(FLAGS.part, lambda part: PARTS[part](output, smoke=FLAGS.smoke, seed=FLAGS.seed, command=command,
                                                   work_dir=work_dir, train=FLAGS.train),
              lambda: write_page(output), output)


if __name__ == "__main__":
    define_flags()
    app.run(main)
