"""python scripts/reproduce_lee.py [--part=PART ...] [--smoke] [--notrain] [--output=DIR]

Reproduces seed 000 (Lee et al., appendix: large batch with extended exploration and a decay chosen at run time)
at CPU scale and writes docs/results/lee/: the setting (`setting.md`), one section per part (`<part>.md`, its JSON
and figure) and README.md, which gathers the sections that exist, so a part can be rerun alone.

Every part reads the same sweeps (small batch, large batch with Goyal et al.'s linear scaling and warm-up, LARS
tuned on a validation split, large batch with extended exploration at 4 lengths; MNIST-1D, `mlp`, 5 seeds, every run
trained to one clean training loss or an epoch cap), made by `tfregimes.sweep.run_sweep` in this process; the first
invocation makes them (about 1 h with --parallel_sweeps on 2 shared cores) and later ones reuse them (a sweep rerun
skips finished points). LARS' sweep runs last, at the point its tuning sweep chose.
- `accuracy`: test accuracy per regime at the common loss (seed 000's tables), and the large-batch gap.
- `curves`: learning curves with the run-time decay points marked (appendix A.3).
- `margins`: the normalized margin distribution over training per regime (appendix A.1, Figure 1).
- `exploration_length`: the margins at the stop against the length of the extra exploration (appendix A.1).
- `readout`: the same claims read post hoc at a higher common loss (0.2), from the same runs' histories.

`--smoke` runs the whole pipeline on tiny sizes in under a minute (for the test suite); `--notrain` launches no
sweep and writes the page from the runs that finished in --work_dir. Every verdict is `tfregimes.analysis`'s.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from lee import lars_tuning, records, regimes, sections  # noqa: E402
from reproduction import define_common_flags, part_sections, run_parts, start  # noqa: E402
from reproduction import write_page as write_page_of_parts  # noqa: E402

PARTS = ("accuracy", "curves", "margins", "exploration_length", "readout")
FLAGS = flags.FLAGS


def define_flags() -> None:
    define_common_flags("lee", PARTS, "Sweep directories; a rerun resumes them and reuses finished runs.")
    flags.DEFINE_integer("seed", 0, "First seed of every regime's runs.")
    flags.DEFINE_bool("parallel_sweeps", False, "Run the four regimes' sweeps at once (four one-thread processes) "
                      "instead of one after the other; --smoke always does.")


def write_page(output: Path) -> None:
    """README.md: the title, every claim's verdict, the setting and every part's section that exists, in the order
    of PARTS."""
    sections = part_sections(output, ["setting", *PARTS])
    # A claim line reads "- **claim**: word. numbers. (verdict's text)" (reproduction.claim_lines); the summary
    # keeps the claim and the word.
    claims = [line.split(". ", 1)[0] + f". ({name})" for name in PARTS if name in sections
              for line in sections[name].splitlines() if line.startswith("- **")]
    write_page_of_parts(output, "Seed 000 (Lee et al., appendix) at CPU scale",
                        ["Made by `scripts/reproduce_lee.py`; the setting gives the command and wall time. Issue 25's "
                         "rerun: every run trains to the same clean training loss (or an epoch cap), so the large "
                         "batch is not compared under-trained; LARS is tuned on a held-out validation split; the "
                         "exploration controller's flatness rule is 0 ≤ relative improvement < tolerance, so a rise "
                         "of the training loss no longer counts as flat (the old page's two decays at epoch 11 came "
                         "from such rises); appendix A.1's exploration-length question has its own section.", "",
                         "Verdicts (each section's claims give the numbers):", "", *claims, ""], sections, PARTS)


def train(setting: regimes.Setting, work_dir: Path, parallel: bool, command: str) -> None:
    """Every sweep but LARS' at once (or one after the other), then LARS at the point its tuning chose; the wall
    time of the whole, runs resumed included, goes to `WALL_FILE` for the page."""
    started = time.time()
    named = regimes.sweeps(setting, work_dir)
    regimes.run_all(named, parallel=parallel)
    chosen = lars_tuning.choose(records.read_sweeps(work_dir, [regimes.LARS_TUNING])[1][regimes.LARS_TUNING])
    print(f"[lee] LARS chosen on the validation split: η = {chosen[0]:g}, {chosen[1]} warm-up epochs", flush=True)
    regimes.run_all({"lars": regimes.sweeps(setting, work_dir, chosen)["lars"]}, parallel=False)
    sections.record_wall_time(work_dir, time.time() - started, command)


def main(argv):
    started = time.time()
    output, work_dir, command = start("lee", argv)
    setting = regimes.setting(FLAGS.smoke, FLAGS.seed)
    if FLAGS.train:
        train(setting, work_dir, parallel=FLAGS.smoke or FLAGS.parallel_sweeps, command=command)
    else:
        print("[lee] --notrain: reading the runs that finished in --work_dir, training nothing", flush=True)
    frame, runs = records.read_sweeps(work_dir, [*regimes.REGIMES, regimes.LARS_TUNING])
    chosen = lars_tuning.choose(runs[regimes.LARS_TUNING])
    sweeps = regimes.sweeps(setting, work_dir, chosen)  # The setting shows the sweeps that made the runs.
    compared, lengths = sections.split_exploration(frame, runs, setting)
    output.mkdir(parents=True, exist_ok=True)
    writers = {"accuracy": lambda: sections.write_accuracy(output, *compared),
               "curves": lambda: sections.write_curves(output, compared[1], setting),
               "margins": lambda: sections.write_margins(output, *compared),
               "exploration_length": lambda: sections.write_exploration_length(output, *lengths, setting),
               "readout": lambda: sections.write_readout(output, compared[1], lengths[1])}

    def write_setting_and_page() -> None:  # The setting's wall time counts the parts too.
        sections.write_setting(output, setting, sweeps, runs, command, (time.time() - started) / 60, work_dir)
        write_page(output)

    run_parts(FLAGS.part, lambda part: writers[part](), write_setting_and_page, output)


if __name__ == "__main__":
    define_flags()
    app.run(main)
