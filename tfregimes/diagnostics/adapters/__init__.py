"""The adapters that run the pure measures: as Keras callbacks during training (`callbacks`, selected by name in
`training_diagnostics`), and as named metrics of a trained network for `python -m tfregimes.evaluate`
(`evaluate_metrics`)."""

from tfregimes.diagnostics.adapters.evaluate_metrics import (
                                                             MINIMUM_METRICS,
                                                             MetricSettings,
                                                             MinimumMetric,
                                                             compute_minimum_metrics,
                                                             fixed_sample,
)
from tfregimes.diagnostics.adapters.training_diagnostics import (
                                                             TRAINING_DIAGNOSTICS,
                                                             diagnostic_callbacks,
                                                             take_examples,
)

__all__ = ["MINIMUM_METRICS", "MetricSettings", "MinimumMetric", "TRAINING_DIAGNOSTICS", "compute_minimum_metrics",
           "diagnostic_callbacks", "fixed_sample", "take_examples"]
