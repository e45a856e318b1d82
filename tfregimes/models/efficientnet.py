"""EfficientNet-B0 (Tan & Le 2019), tuned in seed 002 §6, from keras.applications."""

from __future__ import annotations

import keras

from tfregimes.models.core import ModelOptions, register_model, reject_unused_options


def efficientnet_b0(input_shape: tuple[int, ...], num_classes: int,
                    options: ModelOptions) -> keras.Model:
    """keras.applications' EfficientNet-B0, randomly initialized, with a logits head.

    Its own layers are used as they are: its batch norms cannot become ghost BN, and it keeps
    its built-in input rescaling (x / 255), which the BN after the first conv makes harmless.
    """
    reject_unused_options(options, "efficientnet_b0", set())
    model = keras.applications.EfficientNetB0(
        include_top=True, weights=None, input_shape=input_shape, classes=num_classes,
        classifier_activation=None)
    model.name = "efficientnet_b0"
    return model


register_model("efficientnet_b0", efficientnet_b0,
               paper="Tan & Le 2019, EfficientNet-B0 (seed 002, §6; keras.applications)",
               input_shape=(224, 224, 3), num_classes=1000)
