"""Training: the step, the callbacks that record a run, the run directory, and `train_and_evaluate`."""

from tfregimes.training.trainer import RunConfigError, RunConfigMismatch, RunResult, train_and_evaluate

__all__ = ["RunConfigError", "RunConfigMismatch", "RunResult", "train_and_evaluate"]
