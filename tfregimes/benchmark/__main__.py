"""python -m tfregimes.benchmark --suite=regularizers [--model=resnet20 --batch_size=128 --steps=3 --rounds=5]

Times a suite's training-step variants in one process on the same network and synthetic batch and prints a table,
then, as its last line, a JSON object {variant: {"step_ms": …, "ratio_to_plain": …}}.
"""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tfregimes import cli_common  # noqa: E402
from tfregimes.benchmark.suites import SUITES, suite_variants  # noqa: E402
from tfregimes.benchmark.timing import Setting, report, time_variants  # noqa: E402
from tfregimes.models import model_names  # noqa: E402

flags.DEFINE_enum("suite", None, SUITES.names(), "The suite of variants to time.", required=True)
flags.DEFINE_list("variants", [], "Time only these variants of the suite (and the plain baseline).")
flags.DEFINE_enum("model", Setting.model, model_names(), "The network every variant trains.")
flags.DEFINE_list("input_shape", [str(d) for d in Setting.input_shape], "Shape of one synthetic input.")
flags.DEFINE_integer("num_classes", Setting.num_classes, "Classes of the synthetic labels.", lower_bound=1)
flags.DEFINE_integer("batch_size", Setting.batch_size, "Examples per step.", lower_bound=1)
flags.DEFINE_integer("warmup_steps", Setting.warmup_steps, "Untimed steps per variant (the first traces).",
                     lower_bound=1)
flags.DEFINE_integer("steps", Setting.steps, "Timed steps per variant and round.", lower_bound=1)
flags.DEFINE_integer("rounds", Setting.rounds, "Timing rounds; each times every variant once, interleaved.",
                     lower_bound=1)
flags.DEFINE_integer("seed", Setting.seed, "Seed of the initial weights and the synthetic batch.")
flags.DEFINE_boolean("jit_compile", Setting.jit_compile, "Compile every variant's step with XLA.")
flags.register_validator("input_shape", lambda dims: bool(dims) and all(d.isdigit() and int(d) > 0 for d in dims),
                         message="must be positive integers, e.g. 32,32,3")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cli_common.quiet_python_logs()
    # Each variant traces its own step once; TF's "excessive retracing" warning about that would mislead.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    setting = Setting(model=FLAGS.model, input_shape=tuple(int(d) for d in FLAGS.input_shape),
                      num_classes=FLAGS.num_classes, batch_size=FLAGS.batch_size, warmup_steps=FLAGS.warmup_steps,
                      steps=FLAGS.steps, rounds=FLAGS.rounds, seed=FLAGS.seed,
                      jit_compile=FLAGS.jit_compile)
    try:
        variants = suite_variants(FLAGS.suite, FLAGS.variants)
    except ValueError as error:
        raise app.UsageError(str(error))
    print(f"Timing suite {FLAGS.suite!r}: {', '.join(v.name for v in variants)}", flush=True)
    print(report(time_variants(variants, setting, log=lambda line: print(line, flush=True)), setting), flush=True)


if __name__ == "__main__":
    cli_common.run(main)
