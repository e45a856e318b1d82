"""`EvaluationConfig`: everything one evaluation of a trained classifier depends on. Its defaults are the defaults
of `python -m tfregimes.evaluate`'s flags (each flag is a field here or of `MetricSettings`, with the same name but
for the few `METRIC_FLAGS` renames), as `RunConfig`'s are those of `python -m tfregimes.train`."""

from __future__ import annotations

import dataclasses

from tfregimes.diagnostics.adapters import MetricSettings

# Evaluate flags named otherwise than their MetricSettings field: flag -> field. Every other MetricSettings field is
# a flag of its own name. Flags spell None as 0 (sample_size) or "" (save_margins).
METRIC_FLAGS = {"sharpness_eps": "sharpness_epsilons", "metrics_samples": "sample_size",
                "fisher_normalize_logits": "fisher_normalized_logits"}


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """One evaluation: loss and accuracy of `model` on `split` of `dataset`, then optionally metrics of the minimum
    (`metrics`, on `metrics_split`, computed with `settings`) and the interpolation towards `interpolate_with`."""

    model: str  # A run's export/ directory, a SavedModel directory or a .keras file; it outputs logits.
    dataset: str
    data_dir: str = ""  # Empty: the dataset's default place.
    download: bool = False
    train_subset: int = 0  # The run's --train_subset (0: the whole training split) ...
    train_subset_seed: int = 0  # ... and the --seed that drew it.
    split: str = "test"
    # Of a model that does not carry its own (auto: the dataset's default); a run's export carries its own.
    normalization: str = "auto"
    # Run a SavedModel whose graph touches files, Python or the network (training.saved_model_ops); else refused.
    trust_model: bool = False
    # Evaluate a run's export on data other than the run recorded in its data.json (else refused: its numbers would
    # not be of the data it was trained on).
    allow_other_data: bool = False
    metrics: tuple[str, ...] = ()  # Names in tfregimes.diagnostics.adapters.MINIMUM_METRICS.
    metrics_split: str = "train"
    # The metrics' knobs, and the seed and batch size of the whole evaluation.
    settings: MetricSettings = MetricSettings()
    interpolate_with: str = ""  # A second model: loss and accuracy along θ(a) = a·THIS + (1 − a)·model.
    interpolation_points: int = 31  # Values of a, evenly spaced over [-1, 2].
    interpolation_output: str = "interpolation"  # Writes PREFIX.csv and PREFIX.png.
    interpolation_bn: str = "recompute"  # tfregimes.diagnostics.minimum.interpolation.BN_STATISTICS
    output: str = ""  # Where the CLI writes the result as JSON (empty: nowhere).
    tensorboard_dir: str = ""  # Where the CLI writes it as TensorBoard scalars (write_scalars; empty: nowhere).

    def __post_init__(self):
        object.__setattr__(self, "metrics", tuple(self.metrics))

    def replace(self, **changes) -> EvaluationConfig:
        return dataclasses.replace(self, **changes)
