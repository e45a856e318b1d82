"""Diagnostics: why a training regime generalizes the way it does.

Each quantity is a pure function of (model or weights, data) in one module per family; thin adapters run it.

- `tfregimes.diagnostics.dynamics`: measures of the training trajectory: angular update and effective learning rate
  (seed 002), momentum scale and alignment (seed 001), first-order margin distributions (seed 000 A.1).
- `tfregimes.diagnostics.minimum`: measures of a trained minimum (sharpness, Fisher information, Hessian,
  robustness, interpolation).
- `tfregimes.diagnostics.adapters`: run them: as Keras callbacks that add their values to the epoch logs (so they
  reach TensorBoard and history.csv), entry point `diagnostic_callbacks(names, every=..., ...)`; and as named
  metrics for `python -m tfregimes.evaluate --metrics=...`, entry point `compute_minimum_metrics`.
"""
