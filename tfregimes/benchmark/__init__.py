"""Benchmarks of training cost: `python -m tfregimes.benchmark --suite=regularizers` (training-step variants),
`--suite=diagnostics` (the per-epoch overhead of the training-time diagnostics), `--suite=minimum_metrics` and
`--suite=throughput`; the suites are in the modules (`timing`, `diagnostics_overhead`, `minimum_metrics`,
`throughput`).

This file imports nothing: `python -m tfregimes.benchmark.torch_worker` runs it first, and that process must
never import TensorFlow (see `torch_worker`).
"""
