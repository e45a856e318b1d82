"""Sweeps: a grid of training runs on this machine or a Ray cluster, resumable (docs/sweeps_and_results.md, "Sweeps").

    python -m tfregimes.sweep --flagfile=flags/sweeps/digits_batch.cfg --max_parallel=2

spec (axes and point names), state (sweep.json), point (one run as subprocesses), local and ray_executor
(executors, registered in executors), hparams (TensorBoard HParams), engine (`run_sweep`).
"""
