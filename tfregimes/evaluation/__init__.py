"""Evaluation: a trained classifier from an `EvaluationConfig` to the result `python -m tfregimes.evaluate` prints
and writes (`evaluate_model`), and that result as TensorBoard scalars (`write_scalars`)."""

from tfregimes.evaluation.config import EvaluationConfig
from tfregimes.evaluation.evaluate import evaluate_model, metric_entries, scalar_tags, scalar_values, write_scalars

__all__ = ["EvaluationConfig", "evaluate_model", "metric_entries", "scalar_tags", "scalar_values", "write_scalars"]
