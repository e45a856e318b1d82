"""Sweeps: a grid of training runs on this machine or a Ray cluster, resumable (docs/sweeps_and_results.md, "Sweeps").

    python -m tfregimes.sweep --flagfile=flags/sweeps/digits_batch.cfg --max_parallel=2

or from Python, the same sweep with the same sweep.json:

    from tfregimes.sweep import make_executor, make_spec, run_sweep
    spec = make_spec({"dataset": "digits", "epochs": 2}, grid=["batch_size=32,128"], seeds=3)
    counts = run_sweep(spec, "sweeps/x", executor=make_executor("local", max_parallel=2))

spec (axes and point names), build (`make_spec` over the training flags, the equivalent shell command), state
(sweep.json), point (one run as subprocesses), launch (fresh or preloaded processes), local and ray_executor
(executors, registered in executors), hparams (TensorBoard HParams), engine (`run_sweep`). Importing it imports
TensorFlow (the points are checked by the trainer's own flag rules); `import tfregimes` does not import it.
"""

from tfregimes.sweep.build import make_spec, sweep_command
from tfregimes.sweep.engine import run_sweep
from tfregimes.sweep.executors import make_executor
from tfregimes.sweep.spec import SweepSpec, SweepSpecError

__all__ = ["SweepSpec", "SweepSpecError", "make_executor", "make_spec", "run_sweep", "sweep_command"]
