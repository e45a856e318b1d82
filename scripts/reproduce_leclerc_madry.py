"""python scripts/reproduce_leclerc_madry.py [--part=PART ...] [--smoke] [--notrain] [--output=DIR]

Reproduces seed 001 (Leclerc & Madry 2020, "The Two Regimes of Deep Network Training") at CPU scale and writes
docs/results/leclerc_madry/: one section per part (`<part>.md`, its JSON and figures) and README.md, which gathers
the sections that exist, so a part can be rerun alone.

- `convex` (seconds): §3 Figure 2, heavy ball on a quadratic of condition number 1e5; momentum alignment s_t and
  scale r_t computed by tfregimes' `momentum` diagnostic functions.
- `lr_momentum` (about 22 min on 2 cores): §3.2 Figure 4 and appendix B, test accuracy against the learning rate
  for several momenta on MNIST-1D, trained with tfregimes, and the learning rate matching a baseline's early loss.
- `two_phase` (about 28 min): §4.2 Figure 7, two independent phases against the three-stage step schedule over
  randomly drawn transition epochs, with and without momentum in phase 1, run as sweeps (`tfregimes.sweep.run_sweep`).

`--smoke` runs each part's whole pipeline on tiny sizes in well under a minute (for the test suite); `--notrain`
trains nothing and writes the network parts' sections from the runs that finished in --work_dir (the convex part, a
simulation of seconds, reruns). Every verdict is `tfregimes.analysis`'s.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from leclerc_madry import convex, lr_momentum, two_phase  # noqa: E402
from reproduction import define_common_flags, part_sections, run_parts, start  # noqa: E402
from reproduction import write_page as write_page_of_parts  # noqa: E402

PARTS = {"convex": convex.run, "lr_momentum": lr_momentum.run, "two_phase": two_phase.run}
FLAGS = flags.FLAGS


def define_flags() -> None:
    define_common_flags("leclerc_madry", PARTS,
                        "Run directories of the network parts; a rerun resumes and reuses finished runs.")
    flags.DEFINE_integer("seed", 0, "Seed of the convex part's matrix and start; the network parts' first seed.")


def write_page(output: Path) -> None:
    """README.md: the title and every part's section that exists, in the order of PARTS."""
    write_page_of_parts(output, "Seed 001 (Leclerc & Madry 2020) at CPU scale",
                        ["Made by `scripts/reproduce_leclerc_madry.py`; each section gives its command and wall time.",
                         ""], part_sections(output, PARTS), PARTS)


def main(argv):
    output, work_dir, command = start("leclerc_madry", argv)
    # TensorFlow's INFO lines for every SavedModel the runs export, and its retracing warnings: each run of a part
    # traces its own functions once, which TensorFlow reports as retracing after five runs in one process.
    logging.set_verbosity(logging.ERROR)
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    # The convex part trains no network, so it has no run directories and always reruns (seconds).
    run_parts(FLAGS.part, lambda part: PARTS[part](output, smoke=FLAGS.smoke, seed=FLAGS.seed, command=command,
                                                   **({} if part == "convex" else {"work_dir": work_dir,
                                                                                   "train": FLAGS.train})),
              lambda: write_page(output), output)


if __name__ == "__main__":
    define_flags()
    app.run(main)
