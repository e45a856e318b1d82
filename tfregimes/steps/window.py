"""The epoch window in which a regularizer is on.

Jia & Su's public code switches the Fisher regularizer on only in later learning-rate phases (seed 004's code);
the window makes that possible for every regularizer. Off, a regularized model takes the plain step.
"""

from __future__ import annotations

import keras


class RegularizerWindow(keras.callbacks.Callback):
    """Sets `model.regularizer_active` at the start of each epoch: on for epochs in [start_epoch, end_epoch).

    Epochs count from 0, as Keras counts them; `end_epoch=None` keeps it on to the end. A resumed run
    (`fit(initial_epoch=...)`) gets the right state because it is set from the epoch number alone.
    """

    def __init__(self, start_epoch: int = 0, end_epoch: int | None = None):
        super().__init__()
        if start_epoch < 0:
            raise ValueError(f"start_epoch must be >= 0, got {start_epoch}")
        if end_epoch is not None and end_epoch <= start_epoch:
            raise ValueError(f"end_epoch ({end_epoch}) must be after start_epoch ({start_epoch})")
        self.start_epoch = int(start_epoch)
        self.end_epoch = None if end_epoch is None else int(end_epoch)

    def is_active(self, epoch: int) -> bool:
        return self.start_epoch <= epoch and (self.end_epoch is None or epoch < self.end_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self.model, "set_regularizer_active"):
            raise TypeError(f"{type(self.model).__name__} has no regularizer to switch; "
                            "build it with tfregimes.steps.build_regime_model")
        self.model.set_regularizer_active(self.is_active(epoch))
