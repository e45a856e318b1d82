"""python scripts/reproduce_yun.py [--part=PART ...] [--smoke] [--notrain] [--output=DIR] [--max_parallel=K]

Reproduces seed 002 (Yun et al. 2022, "On the Angular Update and Hyperparameter Tuning of a Scale-Invariant
Network") at CPU scale and writes docs/results/yun/: one section per part (`<part>.md`, its JSON and figure) and
README.md, which gathers the sections that exist, so a part can be rerun alone. Every run is a point of a
sweep run in this process (`tfregimes.sweep.run_sweep`, one per table column, in --work_dir), read back with
`tfregimes.results.collect`; a column two parts share is trained once.

- `sizes`: Table 1 (λ tuned for several training-set sizes N) with the cells of equal tuning factor marked, and
  Figure 3, the angular update per epoch of those cells against eq. 27's arccos(1 − T).
- `batch`: Table 3 (λ tuned for several batch sizes B at the largest N) and Figure 4.
- `transfer`: §6, the best λ on N/8 examples carried to N by the tuning factor, against the best λ on N.

Every claim is one `tfregimes.analysis` verdict (supports / contradicts / inconclusive / not comparable) on an
effect over seeds: the marked cell against the best other cell of its column, paired by seed; log angular updates
within a stated margin; the transferred λ against the best other λ on N. `--smoke` runs the whole pipeline on tiny
sizes in well under a minute (for the test suite); `--notrain` rewrites the page from the runs in --work_dir.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from reproduction import Claim, define_common_flags, part_sections, run_parts, start  # noqa: E402
from reproduction import write_page as write_page_of_parts  # noqa: E402
from yun import tables_part, transfer  # noqa: E402

PARTS = ("sizes", "batch", "transfer")
FLAGS = flags.FLAGS


def define_flags() -> None:
    define_common_flags("yun", PARTS,
                        "Sweep directories, one per table column; a rerun resumes and reuses finished runs.")
    flags.DEFINE_integer("max_parallel", 1, "Runs at once in each sweep (one thread each).", lower_bound=1)


def write_page(output: Path) -> None:
    """README.md: the title, the setting, and every part's section that exists, in the order of PARTS."""
    write_page_of_parts(output, "Seed 002 (Yun et al. 2022) at CPU scale", [
                      "Made by `scripts/reproduce_yun.py`; each section gives its command and wall time.", "",
                      "What was scaled down: CIFAR-10 → Fashion-MNIST subsets (N = 256 to 2,048 instead of 3,125 to "
                      "50,000), scale-invariant ResNet-18 → `scale_invariant_resnet_tiny` (same construction: ghost "
                      "BN of 64, non-affine norm after pooling, fixed last layer; 2 stages of 1 basic block, widths "
                      "8 and 16, ImageNet stem), 300 → 20 epochs, 7 λ rows per column → the 5 around the marked "
                      "one, SGDM only (Tables 2 and 4, plain SGD, and the tuning-η and tuning-both variants (a), (c) "
                      "are not run), no augmentation. The marked tuning factor, 0.16, was fixed before any run: "
                      "twice the paper's 10/128, for 15 times fewer epochs.", ""], part_sections(output, PARTS), PARTS)


def run_part(part: str, output: Path, work_dir: Path, command: str) -> list[Claim]:
    """`transfer` has a module of its own; `sizes` and `batch` are two tables of the same kind."""
    kwargs = {"smoke": FLAGS.smoke, "command": command, "work_dir": work_dir, "max_parallel": FLAGS.max_parallel,
              "train": FLAGS.train}
    return transfer.run(output, **kwargs) if part == "transfer" else tables_part.run_part(part, output, **kwargs)


def main(argv):
    output, work_dir, command = start("yun", argv)
    run_parts(FLAGS.part, lambda part: run_part(part, output, work_dir, command), lambda: write_page(output), output)


if __name__ == "__main__":
    define_flags()
    app.run(main)
