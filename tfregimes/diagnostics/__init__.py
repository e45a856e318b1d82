"""Diagnostics: why a training regime generalizes the way it does.

Each quantity is a pure function of (model or weights, data) in one module per family; thin adapters run it.

- `tfregimes.diagnostics.training`: during training, as Keras callbacks that add their values to the epoch logs
  (so they reach TensorBoard and history.csv): angular update and effective learning rate (seed 002), momentum
  scale and alignment (seed 001), first-order margin distributions (seed 000 A.1). Entry point:
  `diagnostic_callbacks(names, every=..., ...)`.
- `tfregimes.diagnostics.minimum`: at a trained minimum, for `tfregimes.evaluate --metrics=...`.
"""
