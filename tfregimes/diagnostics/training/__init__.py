"""Diagnostics during training: pure functions (one module per family) and thin Keras callbacks.

- `angular`: angular update per epoch (seed 002 eq. 11), whole vector and per layer.
- `learning_rate`: effective learning rate (eq. 9), per epoch (eq. 10), tuning factor (eq. 27) of seed 002.
- `momentum`: momentum scale r_t and alignment s_t (seed 001 eqs. 3, 4), snapshots for the alignment.
- `margins`: first-order margin distributions (seed 000 A.1, Jiang et al. 2018).
- `callbacks`: the Keras adapters; `factory`: `TRAINING_DIAGNOSTICS` and `diagnostic_callbacks`.
"""

from tfregimes.diagnostics.training.factory import TRAINING_DIAGNOSTICS, diagnostic_callbacks, take_examples

__all__ = ["TRAINING_DIAGNOSTICS", "diagnostic_callbacks", "take_examples"]
