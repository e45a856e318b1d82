"""Metrics of a trained network at its minimum: pure functions of (model, data) that never write its weights.

One module per family: sharpness (seed 003), fisher_information (seed 004 eq. 5 and appendix D), hessian (power
iteration and Hutchinson on Hessian-vector products), robustness (seed 004 §7.1), interpolation (seed 003 Figure 3).
`tfregimes.diagnostics.adapters.evaluate_metrics` runs them by name for `python -m tfregimes.evaluate --metrics=...`.
"""

from tfregimes.diagnostics.minimum.fisher_information import (
                                                   FisherStatistics,
                                                   SubsetStatistics,
                                                   fisher_statistics,
                                                   per_example_loss_jacobian,
)
from tfregimes.diagnostics.minimum.flat_model import FlatModel
from tfregimes.diagnostics.minimum.hessian import (
                                                   hessian_top_eigenvalue,
                                                   hessian_trace_and_frobenius,
                                                   hutchinson,
                                                   power_iteration,
)
from tfregimes.diagnostics.minimum.interpolation import (
                                                   interpolation_alphas,
                                                   interpolation_curve,
                                                   plot_interpolation,
                                                   write_interpolation_csv,
)
from tfregimes.diagnostics.minimum.robustness import input_jacobian_norms, robustness
from tfregimes.diagnostics.minimum.sharpness import SharpnessResult, maximize_in_box, model_sharpness, sharpness_key

__all__ = [
    "FisherStatistics", "FlatModel", "SharpnessResult", "SubsetStatistics",
    "fisher_statistics", "hessian_top_eigenvalue",
    "hessian_trace_and_frobenius", "hutchinson", "input_jacobian_norms", "interpolation_alphas",
    "interpolation_curve", "maximize_in_box", "model_sharpness", "per_example_loss_jacobian", "plot_interpolation",
    "power_iteration", "robustness", "sharpness_key", "write_interpolation_csv",
]
