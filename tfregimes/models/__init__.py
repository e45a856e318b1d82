"""The model zoo: `build_model(name, input_shape=..., num_classes=..., options=...)` -> logits.

Importing the package registers every family in `MODELS`; `python -m tfregimes.models` lists them.
"""

# Family modules register their models on import.
from tfregimes.models import (  # noqa: F401
    cifar_resnet,
    densenet,
    efficientnet,
    keskar,
    mlp,
    plain_cnn,
    resnet,
    vgg,
    wide_resnet,
)
from tfregimes.models.core import (
    MODEL_CARDS,
    MODELS,
    STEMS,
    ModelCard,
    ModelOptions,
    build_model,
    model_names,
    register_model,
)
from tfregimes.models.decay import DECAY_SCOPES, decay_variables
from tfregimes.models.norm_layers import GhostBatchNormalization, batch_norm

__all__ = ["MODELS", "MODEL_CARDS", "STEMS", "ModelCard", "ModelOptions", "build_model",
           "model_names", "register_model", "DECAY_SCOPES", "decay_variables",
           "GhostBatchNormalization", "batch_norm"]
