"""Training: one run from a `RunConfig` to a run directory (`train_and_evaluate`), its phases, recording callbacks,
distribution strategy and the classifier scoring it reports its final metrics with."""

from tfregimes.training.run_claim import RunConfigError, RunConfigMismatch, RunDataMismatch
from tfregimes.training.trainer import RunResult, train_and_evaluate

__all__ = ["RunConfigError", "RunConfigMismatch", "RunDataMismatch", "RunResult", "train_and_evaluate"]
