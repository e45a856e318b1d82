"""python -m tfregimes.sweep --flagfile=BASE.cfg --grid=batch_size=64,512 --seeds=0,1 --sweep_dir=sweeps/NAME
       [--zip=...] [--sample=N] [--metrics=sharpness,...] [--executor=local|ray] [--max_parallel=2]

Runs a grid of `tfregimes.train` runs, one directory per point under --sweep_dir, resumably
(docs/sweeps_and_results.md, "Sweeps").
Every training flag on the command line or in the flagfiles is shared by all points; --grid, --zip, --seeds and
--sample say what varies. A whole sweep can live in a flagfile (flags/sweeps/*.cfg).

Exit status: 0 when every point is done or diverged, 1 when a point failed, 2 when the sweep refused to start
(a bad point, a spec that differs from the one --sweep_dir recorded, a missing executor).
"""

import math
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from tfregimes.base.registry import UnknownNameError  # noqa: E402
from tfregimes.cli import common as cli_common  # noqa: E402
from tfregimes.cli import train_flag_rules  # noqa: E402, F401  (the training flags and their rules: shared flags)
from tfregimes.config import run_config as config_lib  # noqa: E402
from tfregimes.sweep import make_spec, run_sweep  # noqa: E402
from tfregimes.sweep.executors import EXECUTORS, make_executor  # noqa: E402
from tfregimes.sweep.ray_executor import RayUnavailableError  # noqa: E402
from tfregimes.sweep.spec import SweepSpecError, expand, validate_points  # noqa: E402
from tfregimes.training.data_fit import check_fits_data  # noqa: E402
from tfregimes.training.run_flag_rules import parse_run_config  # noqa: E402

flags.DEFINE_multi_string("grid", [], "NAME=V1,V2,...: a training flag and its values; the points are the "
                          "product of all --grid axes. A list-valued flag's values are separated by ';'. With "
                          "--sample also NAME=LOW:HIGH[:log], a range to draw from.")
flags.DEFINE_multi_string("zip", [], "NAME=V1,V2,...: axes that vary together (all --zip axes have as many "
                          "values), e.g. --zip=batch_size=64,512 --zip=learning_rate=0.05,0.4.")
flags.DEFINE_list("seeds", [], "Seeds: every point runs once per seed (--seed is then an axis).")
flags.DEFINE_integer("sample", 0, "Draw N points at random from the --grid/--zip axes (and ranges) instead of "
                     "their product. 0: the product.", lower_bound=0)
flags.DEFINE_integer("sample_seed", 0, "Seed of --sample's draws.")
flags.DEFINE_string("sweep_dir", None, "Directory of the sweep: sweep.json, base.cfg and one run directory per "
                    "point. A rerun with the same spec resumes it.")
flags.DEFINE_list("metrics", [], "Run `tfregimes.evaluate --metrics=...` on each point's export afterwards "
                  "(its JSON lands at POINT/evaluation.json).")
flags.DEFINE_boolean("dry_run", False, "Validate every point and list them; run nothing, write nothing.")
flags.DEFINE_enum("executor", "local", EXECUTORS.names(), "Where the points run: local (a pool of processes "
                  "here) or ray (tasks on an existing Ray cluster).")
flags.DEFINE_integer("threads_per_run", 0, "TensorFlow intra- and inter-op threads of each point "
                     "(TF_NUM_INTRAOP_THREADS/TF_NUM_INTEROP_THREADS, OMP_NUM_THREADS). 0: TensorFlow's "
                     "default (all cores) locally, --cpus_per_run on Ray.", lower_bound=0)
flags.DEFINE_enum("point_start", "preloaded", ["preloaded", "fresh"],
                  "How each point's train and evaluate processes start: preloaded (forked from a process that has "
                  "already imported TensorFlow, saving ~5 s of CPU each; CPU-only machines, else fresh) or fresh "
                  "(a new `python -m ...`).")
# Local executor.
flags.DEFINE_integer("max_parallel", 1, "local: points running at once.", lower_bound=1)
flags.DEFINE_string("gpus", "auto", "local: GPU ids shared round-robin through CUDA_VISIBLE_DEVICES, e.g. 0,1; "
                    "auto: those CUDA_VISIBLE_DEVICES lists, else every GPU TensorFlow sees; none: leave it alone.")
# Ray executor.
flags.DEFINE_string("ray_address", "auto", "ray: the cluster, auto (the one `ray start` made here) or HOST:PORT.")
flags.DEFINE_float("cpus_per_run", 1.0, "ray: CPUs each point reserves.", lower_bound=0.0)
flags.DEFINE_float("gpus_per_run", 0.0, "ray: GPUs each point reserves.", lower_bound=0.0)
flags.DEFINE_integer("retries", 3, "ray: times a point is retried when its worker or node dies.", lower_bound=0)
FLAGS = flags.FLAGS

_EXECUTOR_FLAGS = {"local": ("max_parallel", "gpus"), "ray": ("ray_address", "cpus_per_run", "gpus_per_run",
                                                               "retries")}
EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 1, 2, 130


def base_flags() -> dict[str, str]:
    """The training flags given on the command line (and in its flagfiles), as absl resolved them."""
    if FLAGS["model_dir"].present:
        raise SweepSpecError("--model_dir: the sweep names each point's directory (--sweep_dir/<point>); "
                             "remove it")
    return {name: config_lib.format_flag_value(FLAGS[name].value)
            for name in config_lib.field_names() if FLAGS[name].present}


def check_executor_flags() -> None:
    for executor, names in _EXECUTOR_FLAGS.items():
        given = [f"--{name}" for name in names if FLAGS[name].present]
        if given and executor != FLAGS.executor:
            raise SweepSpecError(f"{', '.join(given)} only applies with --executor={executor}; remove it")
    if FLAGS["sample_seed"].present and not FLAGS.sample:
        raise SweepSpecError("--sample_seed only applies with --sample=N; remove it or set that")


def local_gpus(text: str) -> list[str]:
    if text == "none":
        return []
    if text != "auto":
        return [gpu.strip() for gpu in text.split(",") if gpu.strip()]
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [gpu for gpu in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if gpu.strip() and gpu != "-1"]
    return [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]


def executor_from_flags():
    if FLAGS.executor == "local":
        return make_executor("local", max_parallel=FLAGS.max_parallel, gpus=local_gpus(FLAGS.gpus))
    return make_executor("ray", ray_address=FLAGS.ray_address, cpus_per_run=FLAGS.cpus_per_run,
                         gpus_per_run=FLAGS.gpus_per_run, retries=FLAGS.retries)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag (see --helpfull)")
    cli_common.quiet_python_logs()
    try:
        if not FLAGS.sweep_dir:
            raise SweepSpecError("--sweep_dir is required: the directory of the sweep (e.g. sweeps/NAME)")
        check_executor_flags()
        axes = [*FLAGS.grid, *FLAGS.zip] + (["seed=0"] if FLAGS.seeds else [])
        axis_names = {axis.partition("=")[0].strip().lstrip("-") for axis in axes}
        base = {name: value for name, value in base_flags().items() if name not in axis_names}
        spec = make_spec(base, grid=FLAGS.grid, zip_axes=FLAGS.zip, seeds=FLAGS.seeds, sample=FLAGS.sample,
                         sample_seed=FLAGS.sample_seed, metrics=FLAGS.metrics)
        if FLAGS.dry_run:
            points = expand(spec)
            validate_points(points, spec.base, parse_run_config, check_fits_data)
            print(f"{len(points)} valid points:\n" + "\n".join(f"  {p.name}" for p in points))
            return 0
        executor = executor_from_flags()
        threads = FLAGS.threads_per_run or (math.ceil(FLAGS.cpus_per_run) if FLAGS.executor == "ray" else 0)
        counts = run_sweep(spec, FLAGS.sweep_dir, executor,
                           command=["python", "-m", "tfregimes.sweep", *sys.argv[1:]], threads_per_run=threads,
                           cwd=os.getcwd(), preloaded=FLAGS.point_start == "preloaded")
    except (SweepSpecError, RayUnavailableError, UnknownNameError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the running points were stopped and stay `running`.
        print(f"sweep: interrupted; rerun the same command to resume {FLAGS.sweep_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if counts["failed"] else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def entry_point() -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # Stop the points as Ctrl-C does, not leave them orphaned.
    cli_common.run(main, doc=__doc__)


if __name__ == "__main__":
    entry_point()
