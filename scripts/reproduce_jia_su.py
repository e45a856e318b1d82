"""python scripts/reproduce_jia_su.py [--part=PART ...] [--smoke] [--output=DIR]

Reproduces seed 004 (Jia & Su 2020, "Information-theoretic local minima characterization and regularization") at
CPU scale and writes docs/results/jia_su/: one section per part (`<part>.md`, its JSON and figure) and README.md,
which gathers the sections that exist, so a part can be rerun alone. The setting (a small CNN on a Fashion-MNIST
subset, each model trained until its clean training loss reaches one target, with the learning rate divided by 10
on plateaus) is in scripts/jia_su/setup.py, beside the paper's; every model is trained and measured by a sweep
with --metrics (`tfregimes.sweep.run_sweep`).

- `confusion`: §7.1 Figure 1, Scenario I, random-labelled images appended to training (`--confusion_size`).
- `augmentation`: Figure 2, Scenario II, none / flip / crop1_flip / crop4_flip (the crops with 2 seeds: they
  cannot reach the stop here, and are shown apart).
- `batch_size`: Figure 3, Scenario III, batch sizes from the default to 8 times it (32, 128, 256).
- `regularizer`: §7.2 Tables 1–2, test error and γ̂ with and without the Fisher-trace regularizer (Algorithm 1).

The default setting's models are trained once and shared by all parts. `--smoke` runs the whole pipeline on tiny
sizes (for the test suite).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from jia_su import regularizer, scenarios  # noqa: E402
from reproduction import Claim, define_common_flags, part_sections, run_parts, start  # noqa: E402
from reproduction import write_page as write_page_of_parts  # noqa: E402

from tfregimes.base.run_files import SWEEP_FILE  # noqa: E402

PARTS = ["confusion", "augmentation", "batch_size", "regularizer"]
FLAGS = flags.FLAGS


def define_flags() -> None:
    define_common_flags("jia_su", PARTS, "Sweep directories; a rerun resumes them and reuses finished runs.")
    flags.DEFINE_integer("max_parallel", None, "Models trained at once (default: 1 with --smoke, else 2).",
                         lower_bound=1)


def sweep_points(work_dir: Path) -> list[tuple[str, dict]]:
    """(`sweep/point`, the point's record in sweep.json) of every point of the sweeps under `work_dir`."""
    import json
    return [(f"{state_file.parent.name}/{point['name']}", point)
            for state_file in sorted(work_dir.glob(f"*/{SWEEP_FILE}"))
            for point in json.loads(state_file.read_text())["points"]]


def unfinished_points(work_dir: Path) -> list[str]:
    """`sweep/point` of every point of the sweeps under `work_dir` that is not done (or diverged)."""
    return [name for name, point in sweep_points(work_dir) if point["state"] not in ("done", "diverged")]


def wall_time(work_dir: Path) -> str:
    """The full mode's wall time as the sweeps recorded it: from the first model's start to the last one's end."""
    from datetime import datetime
    points = [p for _, p in sweep_points(work_dir) if p.get("started") and p.get("ended")]
    if not points:
        return "no model has finished yet"
    first = min(datetime.fromisoformat(p["started"]) for p in points)
    last = max(datetime.fromisoformat(p["ended"]) for p in points)
    return (f"{(last - first).total_seconds() / 60:.0f} min from the first model's start to the last one's end "
            f"({len(points)} models, {FLAGS.max_parallel or setup_sizes()['parallel']} at a time, 1 thread each, on "
            "2 shared CPU cores)")


def setup_sizes() -> dict:
    from jia_su import setup
    return setup.sizes(FLAGS.smoke)


def write_page(output: Path, work_dir: Path) -> None:
    """README.md: the title, the setting beside the paper's, the wall time, every part's section that exists, in the
    order of PARTS, and the models not finished yet."""
    from jia_su import setup
    unfinished = unfinished_points(work_dir)
    write_page_of_parts(output, "Seed 004 (Jia & Su 2020) at CPU scale", [
                      "Made by `scripts/reproduce_jia_su.py`; each section gives its command and wall time.", "",
                      "**Setting.** " + " ".join(setup.__doc__.split("\n\n", 1)[1].split()), "",
                      *setup.setting_table(setup_sizes()), "",
                      f"**Wall time** ({'smoke' if FLAGS.smoke else 'full'} mode): {wall_time(work_dir)}"
                      + ("." if FLAGS.smoke else f"; estimated before the run from the pilot: "
                                                 f"{setup.FULL_MODE_ESTIMATE}."), "",
                      *([f"**Not finished** ({len(unfinished)} models; the tables count each setting's finished "
                         f"models in `n`; rerunning the command completes them and reuses the rest): "
                         + ", ".join(unfinished) + ".", ""] if unfinished else [])],
                        part_sections(output, PARTS), PARTS)


def run_part(part: str, output: Path, work_dir: Path, command: str) -> list[Claim]:
    """`regularizer` has a module of its own; the other parts are scenarios of the same kind. Each says what it
    starts as `[part] ...`."""
    kwargs = {"smoke": FLAGS.smoke, "seed": 0, "command": command, "work_dir": work_dir,
              "parallel": FLAGS.max_parallel, "train": FLAGS.train,
              "log": lambda line: print(f"[{part}] {line}", flush=True)}
    return regularizer.run(output, **kwargs) if part == "regularizer" else scenarios.run(part, output, **kwargs)


def main(argv):
    output, work_dir, command = start("jia_su", argv)
    logging.set_verbosity(logging.ERROR)
    run_parts(FLAGS.part, lambda part: run_part(part, output, work_dir, command), lambda: write_page(output, work_dir),
              output)


if __name__ == "__main__":
    define_flags()
    app.run(main)
