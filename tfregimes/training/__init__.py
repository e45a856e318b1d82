"""Training: the step, the callbacks that record a run, the run directory, and `train_and_evaluate`.

The trainer is imported on first use (PEP 562), so that `tfregimes.regimes`, which builds on
`tfregimes.training.step`, can itself be imported by the trainer without a cycle.
"""

_TRAINER_NAMES = ("RunConfigError", "RunConfigMismatch", "RunResult", "train_and_evaluate")

__all__ = list(_TRAINER_NAMES)


def __getattr__(name):
    if name in _TRAINER_NAMES:
        from tfregimes.training import trainer
        return getattr(trainer, name)
    raise AttributeError(f"module 'tfregimes.training' has no attribute {name!r}")
