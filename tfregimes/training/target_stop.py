"""`--stop_at_train_loss` / `--stop_at_train_accuracy`: end a run at the first checked epoch whose clean training
loss or accuracy reaches a target.

Comparisons of minima are only fair at equal training loss: Keskar et al. (seed 003, §2.2 and Table 2) compare small-
and large-batch minima at the same (~99 %) training accuracy, seed 004 (Jia & Su §7.1) at near-zero training loss.
History.csv's `loss` and `accuracy` cannot say when that point is reached: they are running means over an epoch's
batches in training mode (augmented inputs, dropout, batch-norm batch statistics, weights that moved during the
epoch), so two regimes "at the target" by them are not at the same point. The check here reads the clean training
examples instead: no augmentation, inference mode, the run's own normalization, one full pass of exactly the code
that computes metrics.json's final `train_loss` and `train_accuracy` (`trainer.inference_metrics`), over the whole
training set or a fixed subset of `check_examples` chosen by the seed.

The rule: at the end of epoch e (counted from 1) with e a multiple of `every`, or e the run's last epoch, the clean
loss L_e and accuracy A_e are read; the target is met when L_e <= target (train_loss) or A_e >= target
(train_accuracy), and the run stops there. The state goes to progress.json, so a run killed after it reached the
target and resumed stays stopped instead of training on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from tfregimes.training.scoring import inference_evaluation

DEFAULT_CHECK_EXAMPLES = 10_000  # --stop_check_examples: a pass costs at most this many examples' inference.
_SUBSET_STREAM = 2  # Another random stream of --seed than --train_subset's, so the two draws are independent.


def check_stop_settings(loss_target: float, accuracy_target: float, every: int, examples: int) -> None:
    """Raises ValueError naming the flag for a bad value, or for both stops set at once (0 turns a stop off)."""
    if not (math.isfinite(loss_target) and loss_target >= 0.0):
        raise ValueError(f"--stop_at_train_loss={loss_target}: must be a positive finite loss (e.g. 0.05), or 0 for "
                         "no stop")
    if not 0.0 <= accuracy_target <= 1.0:  # NaN fails too.
        raise ValueError(f"--stop_at_train_accuracy={accuracy_target}: must be a fraction in (0, 1] (0.99 for "
                         "99 %), or 0 for no stop")
    if loss_target and accuracy_target:
        raise ValueError(f"--stop_at_train_loss={loss_target} and --stop_at_train_accuracy={accuracy_target}: a run "
                         "stops at one target; set at most one of them")
    if every < 1:
        raise ValueError(f"--stop_check_every={every}: must be at least 1 (check every k epochs)")
    if examples < 0:
        raise ValueError(f"--stop_check_examples={examples}: must be 0 (the whole training set) or a number of "
                         "examples")


def criterion_and_target(loss_target: float, accuracy_target: float) -> tuple[str, float] | None:
    """("train_loss" or "train_accuracy", its target) of the stop that is set; None for no stop."""
    if loss_target:
        return "train_loss", loss_target
    if accuracy_target:
        return "train_accuracy", accuracy_target
    return None


def check_rows(num_train: int, examples: int, seed: int) -> np.ndarray | None:
    """The training rows the check reads (sorted), a fixed draw by `seed`; None for all of them (`examples` 0, or
    at least the training set's size)."""
    if examples == 0 or examples >= num_train:
        return None
    rng = np.random.default_rng([seed, _SUBSET_STREAM])
    return np.sort(rng.choice(num_train, size=examples, replace=False))


class TrainingTarget(keras.callbacks.Callback):
    """Stops `fit` at the end of the first checked epoch whose clean training loss is at most `target`
    (`criterion` train_loss) or whose clean accuracy is at least `target` (train_accuracy). `measure()` returns
    {"loss", "accuracy", "examples"} of the current weights on the clean examples. Each check's values go into the
    epoch's logs as `stop_clean_loss` and `stop_clean_accuracy` (history.csv, TensorBoard). A record of
    `EpochRecorder` (its state in progress.json under `name`): it must run before the recorder."""

    name = "stop"  # Its key in progress.json.

    def __init__(self, criterion: str, target: float, measure: Callable[[], dict[str, Any]], *, every: int,
                 last_epoch: int):
        super().__init__()
        if criterion not in ("train_loss", "train_accuracy") or not target > 0:
            raise ValueError(f"no stop at {criterion} {target}: build no TrainingTarget")
        self.criterion, self.target, self.measure = criterion, target, measure
        self.every, self.last_epoch = every, last_epoch
        self.reached_at_epoch: int | None = None  # Epochs completed when the target was first met.
        self.last_check: dict[str, Any] | None = None  # {"epoch", "loss", "accuracy", "examples"} of the last check.

    @property
    def reached(self) -> bool:
        return self.reached_at_epoch is not None

    def due(self, epochs_done: int) -> bool:
        return epochs_done % self.every == 0 or epochs_done == self.last_epoch

    def met(self, loss: float, accuracy: float) -> bool:
        return loss <= self.target if self.criterion == "train_loss" else accuracy >= self.target

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.reached:
            self.model.stop_training = True
            return
        loss = logs.get("loss")
        if not self.due(epoch + 1) or (loss is not None and not math.isfinite(float(loss))):
            return  # Not a checked epoch, or diverged: a diverged run reaches nothing.
        result = self.measure()
        self.last_check = {"epoch": epoch + 1, "loss": float(result["loss"]), "accuracy": float(result["accuracy"]),
                           "examples": int(result["examples"])}
        logs["stop_clean_loss"], logs["stop_clean_accuracy"] = self.last_check["loss"], self.last_check["accuracy"]
        if self.met(self.last_check["loss"], self.last_check["accuracy"]):
            self.reached_at_epoch = epoch + 1
            self.model.stop_training = True

    # --- EpochRecorder's record interface, and the resume ---------------------------------------------------
    def history_fields(self, epochs_done: int) -> dict[str, Any]:
        return {}  # The checks' values come with the epoch's logs.

    def state(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "target": self.target, "reached_at_epoch": self.reached_at_epoch,
                "last_check": self.last_check}

    def restore(self, state: dict[str, Any]) -> None:
        self.reached_at_epoch = state.get("reached_at_epoch")
        self.last_check = state.get("last_check")

    def metrics(self) -> dict[str, Any]:
        """metrics.json's `stop`: the rule, whether and where it stopped the run, and the clean values it read
        last (at the epoch it stopped, or the final check)."""
        check = self.last_check or {}
        return {"criterion": self.criterion, "target": self.target, "reached_target": self.reached,
                "stopped_at_epoch": self.reached_at_epoch, "clean_loss": check.get("loss"),
                "clean_accuracy": check.get("accuracy"), "checked_at_epoch": check.get("epoch"),
                "check_examples": check.get("examples"), "check_every": self.every}


def build_training_target(config, model: keras.Model, data) -> TrainingTarget | None:
    """The stop of `config` (a RunConfig) on `model`, checked on `data`'s clean training examples (the rows of
    `check_rows`) by `inference_evaluation`, as metrics.json's final train_loss; None when no stop is set."""
    chosen = criterion_and_target(config.stop_at_train_loss, config.stop_at_train_accuracy)
    if chosen is None:
        return None
    evaluate = inference_evaluation(model)
    examples = data.evaluation("train", config.eval_batch_size,
                               rows=check_rows(data.info.num_train, config.stop_check_examples, config.seed))
    return TrainingTarget(*chosen, lambda: evaluate(examples), every=config.stop_check_every,
                          last_epoch=config.epochs)
