"""python -m tfregimes.benchmark --suite=regularizers|diagnostics|minimum_metrics|throughput [flags]

--suite=regularizers [--model=resnet20 --batch_size=128 --steps=3 --rounds=5]: times the suite's training-step
variants in one process on the same network and synthetic batch and prints a table, then, as its last line, a JSON
object {variant: {"step_ms": …, "ratio_to_plain": …}}.

--suite=diagnostics [--diagnostics=angular,elr,momentum --diagnostics_every=1 --epochs=0 --rounds=20]: times the
epochs of the default training job (RunConfig(): digits, cnn_small, batch 64) with and without the training-time
diagnostics and prints a table, then, as its last line, a JSON object {"plain": {"epoch_ms": …}, "diagnostics":
{"epoch_ms": …, "overhead_percent": …, "overhead_percent_iqr": […], "callback_ms": …, "callback_percent": …,
"first_epoch_extra_ms": …}, "setting": {…}}.

--suite=minimum_metrics [--model=resnet20 --samples=100 --rounds=5 --variants=...]: times γ̂ and its companions per
subset of N' = --samples examples against an independent γ̂ baseline, and one unit of the other metrics at a
minimum, in one process, and prints a table, then, as its last line, a JSON object {"variants": {name: {"ms": …,
"ratio_to_baseline": …, "round_ratios": […]}}, "values": {…}, "setting": {…}}.

--suite=throughput [--model=M --dataset=D --batch_size=B --train_subset=0 --epochs=1 --rounds=3
--precision=float32 --jit_compile --notorch --torch_timeout=900 --trainer_variants=mixed_bfloat16,jit_compile
--nodeterministic]:
images/s of the trainer's epoch, plain model.fit, and PyTorch eager and torch.compile on the same network (when
PyTorch is installed; in a worker process without TensorFlow), interleaved; without --model the two jobs
ResNet-20 (synthetic32, batch 128) and the default digits CNN (batch 64). Last line: JSON {"jobs": [{"model": …,
"variants": {name: {"images_per_s": …, "ratio_to_keras_fit": …}}, "torch": …}]}.

--model, --batch_size, --rounds and --seed serve every suite, with each suite's own defaults; a flag that only the
other suite reads is refused.
"""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tfregimes.benchmark.diagnostics_overhead import (  # noqa: E402
    DEFAULT_DIAGNOSTICS,
    DiagnosticsSetting,
    SettingError,
    diagnostics_report,
    time_diagnostics,
)
from tfregimes.benchmark.minimum_metrics import (  # noqa: E402
    MinimumSetting,
    minimum_metrics_report,
    time_minimum_metrics,
)
from tfregimes.benchmark.suites import SUITES, suite_variants  # noqa: E402
from tfregimes.benchmark.throughput import (  # noqa: E402
    DEFAULT_JOBS,
    TRAINER_VARIANTS,
    ThroughputSetting,
    throughput_report,
    time_throughput,
)
from tfregimes.benchmark.timing import Setting, report, time_variants  # noqa: E402
from tfregimes.cli import common as cli_common  # noqa: E402
from tfregimes.cli import dataset_flag  # noqa: E402
from tfregimes.diagnostics.adapters import TRAINING_DIAGNOSTICS  # noqa: E402
from tfregimes.models import model_names  # noqa: E402
from tfregimes.training import RunConfigError  # noqa: E402

DIAGNOSTICS_SUITE = "diagnostics"
MINIMUM_SUITE = "minimum_metrics"
THROUGHPUT_SUITE = "throughput"
# The flags each kind of suite reads besides the shared ones (suite, model, batch_size, rounds, seed).
STEP_FLAGS = ("variants", "input_shape", "num_classes", "warmup_steps", "steps", "jit_compile")
EPOCH_FLAGS = ("dataset", "train_subset", "diagnostics", "diagnostics_every", "epochs", "trainer_epoch")
MINIMUM_FLAGS = ("variants", "input_shape", "num_classes", "samples")
SUITE_FLAGS = {**{name: STEP_FLAGS for name in SUITES.names()}, DIAGNOSTICS_SUITE: EPOCH_FLAGS,
               MINIMUM_SUITE: MINIMUM_FLAGS,
               THROUGHPUT_SUITE: ("dataset", "train_subset", "epochs", "jit_compile", "precision", "torch",
                                  "torch_timeout", "trainer_variants", "deterministic")}
_DIAG = DiagnosticsSetting()

flags.DEFINE_enum("suite", None, sorted(SUITE_FLAGS), "The suite to time.", required=True)
flags.DEFINE_enum("model", Setting.model, model_names(),
                  f"The network every variant trains (--suite=diagnostics: default {_DIAG.model}, RunConfig's).")
flags.DEFINE_integer("batch_size", Setting.batch_size,
                     f"Examples per step (--suite=diagnostics: default {_DIAG.batch_size}, RunConfig's).",
                     lower_bound=1)
flags.DEFINE_integer("rounds", Setting.rounds,
                     "Timing rounds; each times every variant once, interleaved (--suite=diagnostics: default "
                     f"{_DIAG.rounds}).", lower_bound=1)
flags.DEFINE_integer("seed", Setting.seed, "Seed of the initial weights and the data "
                     f"(--suite=diagnostics: default {_DIAG.seed}, RunConfig's).")
# Step suites (regularizers).
flags.DEFINE_list("variants", [], "Time only these variants of the suite (and the plain baseline).")
flags.DEFINE_list("input_shape", [str(d) for d in Setting.input_shape], "Shape of one synthetic input.")
flags.DEFINE_integer("num_classes", Setting.num_classes, "Classes of the synthetic labels.", lower_bound=1)
flags.DEFINE_integer("warmup_steps", Setting.warmup_steps, "Untimed steps per variant (the first traces).",
                     lower_bound=1)
flags.DEFINE_integer("steps", Setting.steps, "Timed steps per variant and round.", lower_bound=1)
flags.DEFINE_boolean("jit_compile", Setting.jit_compile, "Compile every variant's step with XLA.")
flags.register_validator("input_shape", lambda dims: bool(dims) and all(d.isdigit() and int(d) > 0 for d in dims),
                         message="must be positive integers, e.g. 32,32,3")
# --suite=diagnostics.
flags.DEFINE_string("dataset", _DIAG.dataset, f"Dataset of the timed job; one of {dataset_flag.DATASET_CHOICES}.")
dataset_flag.register_dataset_validator("dataset")
flags.DEFINE_integer("train_subset", _DIAG.train_subset, "Train on this many examples; 0: the whole split.",
                     lower_bound=0)
flags.DEFINE_list("diagnostics", list(DEFAULT_DIAGNOSTICS),
                  f"The diagnostics whose cost is timed, any of {', '.join(TRAINING_DIAGNOSTICS.names())}.")
flags.register_validator("diagnostics", lambda names: bool(names) and all(n in TRAINING_DIAGNOSTICS for n in names),
                         message=f"must be one or more of {', '.join(TRAINING_DIAGNOSTICS.names())}")
flags.DEFINE_integer("diagnostics_every", _DIAG.every, "Measure the diagnostics every k epochs.", lower_bound=1)
flags.DEFINE_integer("epochs", _DIAG.epochs, "Timed epochs per variant and round, a multiple of the diagnostics' "
                     "measurement period; 0: 3, rounded up to such a multiple.", lower_bound=0)
flags.DEFINE_boolean("trainer_epoch", _DIAG.trainer_epoch,
                     "Time the trainer's whole epoch (test-split evaluation, TensorBoard, checkpoint); "
                     "--notrainer_epoch: the training alone.")
# --suite=minimum_metrics.
flags.DEFINE_integer("samples", MinimumSetting.samples, "Examples N' per unit of work (γ̂: per subset).",
                     lower_bound=1)
# --suite=throughput.
flags.DEFINE_enum("precision", ThroughputSetting.precision, ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras mixed-precision policy of the Keras variants (PyTorch trains in float32).")
flags.DEFINE_boolean("torch", ThroughputSetting.torch, "Time the PyTorch twins when PyTorch is installed.")
flags.DEFINE_float("torch_timeout", ThroughputSetting.torch_timeout, "Seconds the suite waits for any one answer of "
                   "the PyTorch worker (building the twins, one round's epochs) before it kills it; the twins then "
                   "leave the job (torch: failed: PyTorch worker timed out after N s).", lower_bound=1)
flags.DEFINE_list("trainer_variants", [], "Also time the trainer's epoch with one change each, in the same rounds: "
                  f"any of {', '.join(TRAINER_VARIANTS)}.")
flags.DEFINE_boolean("deterministic", ThroughputSetting.deterministic,
                     "TensorFlow's op determinism, as the trainer's --deterministic (process-wide; XLA needs it off).")
flags.register_validator("trainer_variants", lambda names: all(n in TRAINER_VARIANTS for n in names),
                         message=f"must be any of {', '.join(TRAINER_VARIANTS)}")
FLAGS = flags.FLAGS


def check_suite_flags(suite: str) -> None:
    """Refuses a flag, set on the command line, that only another suite reads (it would be silently ignored)."""
    for other, names in SUITE_FLAGS.items():
        for name in names:
            if FLAGS[name].present and name not in SUITE_FLAGS[suite]:
                raise app.UsageError(f"--{name} applies to --suite={other}, not to --suite={suite}")


def run_step_suite(suite: str) -> None:
    setting = Setting(model=FLAGS.model, input_shape=tuple(int(d) for d in FLAGS.input_shape),
                      num_classes=FLAGS.num_classes, batch_size=FLAGS.batch_size, warmup_steps=FLAGS.warmup_steps,
                      steps=FLAGS.steps, rounds=FLAGS.rounds, seed=FLAGS.seed,
                      jit_compile=FLAGS.jit_compile)
    try:
        variants = suite_variants(suite, FLAGS.variants)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    print(f"Timing suite {suite!r}: {', '.join(v.name for v in variants)}", flush=True)
    print(report(time_variants(variants, setting, log=lambda line: print(line, flush=True)), setting), flush=True)


def run_diagnostics_suite(suite: str) -> None:
    # The shared flags' defaults are the step suites'; here, unless set, they are RunConfig's.
    shared = {field: getattr(FLAGS, name) for field, name in (("model", "model"), ("batch_size", "batch_size"),
                                                               ("rounds", "rounds"), ("seed", "seed"))
              if FLAGS[name].present}
    setting = DiagnosticsSetting(dataset=FLAGS.dataset, train_subset=FLAGS.train_subset,
                                 diagnostics=tuple(FLAGS.diagnostics), every=FLAGS.diagnostics_every,
                                 epochs=FLAGS.epochs, trainer_epoch=FLAGS.trainer_epoch, **shared)
    print(f"Timing suite {suite!r}: plain, diagnostics ({','.join(setting.diagnostics)} every {setting.every})",
          flush=True)
    try:
        timing = time_diagnostics(setting, log=lambda line: print(line, flush=True))
    except (SettingError, RunConfigError) as error:  # e.g. --epochs not a multiple of the measurement period.
        raise app.UsageError(str(error)) from None
    print(diagnostics_report(timing), flush=True)


def run_minimum_suite(suite: str) -> None:
    setting = MinimumSetting(model=FLAGS.model, input_shape=tuple(int(d) for d in FLAGS.input_shape),
                             num_classes=FLAGS.num_classes, samples=FLAGS.samples, rounds=FLAGS.rounds,
                             seed=FLAGS.seed)
    if FLAGS["batch_size"].present:
        raise app.UsageError(f"--batch_size does not apply to --suite={suite}: --samples sets its examples")
    print(f"Timing suite {suite!r} on {setting.model}, N' = {setting.samples}", flush=True)
    try:
        result = time_minimum_metrics(setting, only=tuple(FLAGS.variants), log=lambda line: print(line, flush=True))
    except ValueError as error:  # An unknown --variants name; the message lists the valid ones.
        raise app.UsageError(str(error)) from None
    print(minimum_metrics_report(result), flush=True)


def throughput_jobs() -> list[ThroughputSetting]:
    """Without --model the two default jobs; with it one job (--dataset and --batch_size, or the default job's)."""
    common = {"train_subset": FLAGS.train_subset, "epochs": FLAGS.epochs or ThroughputSetting.epochs,
              "rounds": FLAGS.rounds if FLAGS["rounds"].present else ThroughputSetting.rounds, "seed": FLAGS.seed,
              "precision": FLAGS.precision, "jit_compile": FLAGS.jit_compile, "torch": FLAGS.torch,
              "torch_timeout": FLAGS.torch_timeout, "trainer_variants": tuple(FLAGS.trainer_variants),
              "deterministic": FLAGS.deterministic}
    if not FLAGS["model"].present:
        if FLAGS["dataset"].present or FLAGS["batch_size"].present:
            raise app.UsageError("--dataset and --batch_size need --model in --suite=throughput (without --model "
                                 "it runs its default jobs: " + ", ".join(f"{m} on {d}" for m, d, _ in DEFAULT_JOBS))
        return [ThroughputSetting(model=m, dataset=d, batch_size=b, **common) for m, d, b in DEFAULT_JOBS]
    defaults = {m: (d, b) for m, d, b in DEFAULT_JOBS}.get(FLAGS.model)
    if defaults is None and not FLAGS["dataset"].present:
        raise app.UsageError(f"--suite=throughput --model={FLAGS.model} needs --dataset")
    dataset = FLAGS.dataset if FLAGS["dataset"].present else defaults[0]
    batch_size = FLAGS.batch_size if FLAGS["batch_size"].present else (defaults or (None, FLAGS.batch_size))[1]
    return [ThroughputSetting(model=FLAGS.model, dataset=dataset, batch_size=batch_size, **common)]


def run_throughput_suite(suite: str) -> None:
    results = []
    for setting in throughput_jobs():
        print(f"Timing suite {suite!r}: {setting.model} on {setting.dataset}, batch {setting.batch_size}",
              flush=True)
        try:
            results.append(time_throughput(setting, log=lambda line: print(line, flush=True)))
        except (ValueError, RunConfigError) as error:  # e.g. a model that cannot take the dataset's inputs.
            raise app.UsageError(str(error)) from None
    print(throughput_report(results), flush=True)


RUNNERS = {**{name: run_step_suite for name in SUITES.names()}, DIAGNOSTICS_SUITE: run_diagnostics_suite,
           MINIMUM_SUITE: run_minimum_suite, THROUGHPUT_SUITE: run_throughput_suite}


def main(argv):
    del argv
    check_suite_flags(FLAGS.suite)  # Before anything is built.
    cli_common.quiet_python_logs()
    # Each variant traces its own step once; TF's "excessive retracing" warning about that would mislead.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    RUNNERS[FLAGS.suite](FLAGS.suite)


def entry_point() -> None:
    """`python -m tfregimes.benchmark`."""
    cli_common.run(main, doc=__doc__)


if __name__ == "__main__":
    entry_point()
