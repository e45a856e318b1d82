"""Measures of the training trajectory: pure functions of weights, optimizer state and data, one module per family.

- `angular`: angular update per epoch (seed 002 eq. 11), whole vector and per layer.
- `learning_rate`: effective learning rate (eq. 9), per epoch (eq. 10), tuning factor (eq. 27) of seed 002.
- `momentum`: momentum scale r_t and alignment s_t (seed 001 eqs. 3, 4), snapshots for the alignment.
- `margins`: first-order margin distributions (seed 000 A.1, Jiang et al. 2018).
- `weight_groups`: which weights are scale invariant, grouped by layer.
`tfregimes.diagnostics.adapters` runs them as Keras callbacks during training.
"""
