"""Training-time data augmentation by name, built only from stateless random ops.

Every random choice is a function of an explicit seed tensor (shape [2]), which the pipelines
derive from (run seed, epoch, batch or example index). That makes epoch e's augmentation the same
whether or not the run was interrupted and resumed before it. Augmentations act on images scaled
to [0, 1], before normalization, so zero padding is black padding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from tfregimes.base.registry import Registry

_ALG = "philox"  # fixed, so seeds give the same numbers on every device

# Seed 000, appendix A.2, the ImageNet recipe.
IMAGENET_CROP = 224
IMAGENET_EVAL_RESIZE = 256
IMAGENET_TRAIN_RESIZE_RANGE = (256, 384)  # shorter side, inclusive
IMAGENET_BRIGHTNESS_DELTA = 32.0 / 255.0
IMAGENET_HUE_DELTA = 0.1
IMAGENET_SATURATION_RANGE = (0.6, 1.4)
IMAGENET_CONTRAST_RANGE = (0.6, 1.4)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """One named augmentation.

    batch_fn: (images [B, H, W, C] in [0, 1], seed [2]) -> images of the same shape; for data of a
      fixed image size (every in-memory image set, and ImageNet after its evaluation crop).
    example_fn: (one decoded uint8 image of any size, seed [2]) -> float [224, 224, 3] in [0, 1];
      replaces the evaluation crop in the streaming ImageNet pipeline.
    Exactly one of them is set.
    """

    name: str
    description: str
    batch_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None
    example_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None

    @property
    def is_identity(self) -> bool:
        return self.name == "none"


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def random_flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirrors each image left-right with probability 1/2."""
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed, alg=_ALG) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def random_pad_and_crop(images: tf.Tensor, seed: tf.Tensor, pad: int) -> tf.Tensor:
    """Zero-pads each side by `pad` pixels and cuts a random window of the original size.

    Seed 004, section 7.1 scenario II ("1-crop-f", "4-crop-f"). Windows are gathered row and
    column-wise per image, so the whole batch is cropped in two vectorized ops.
    """
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform([tf.shape(images)[0], 2], seed, minval=0,
                                          maxval=2 * pad + 1, dtype=tf.int32, alg=_ALG)
    rows = offsets[:, :1] + tf.range(height)[None, :]  # [B, H]
    cols = offsets[:, 1:] + tf.range(width)[None, :]  # [B, W]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def _crop_and_flip(pad: int):
    def augment(images, seed):
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2, alg=_ALG))
        return random_flip(random_pad_and_crop(images, crop_seed, pad), flip_seed)
    return augment


def resize_shorter_side(image: tf.Tensor, size) -> tf.Tensor:
    """Bilinear resize keeping the aspect ratio, shorter side -> `size`."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    return tf.image.resize(image, tf.maximum(new_shape, tf.cast(size, tf.int32)))


def imagenet_eval_crop(image: tf.Tensor) -> tf.Tensor:
    """Shorter side to 256, central 224 x 224 crop; uint8 in, float [0, 1] out."""
    image = resize_shorter_side(tf.cast(image, tf.float32) / 255.0, IMAGENET_EVAL_RESIZE)
    shape = tf.shape(image)
    top = (shape[0] - IMAGENET_CROP) // 2
    left = (shape[1] - IMAGENET_CROP) // 2
    image = image[top:top + IMAGENET_CROP, left:left + IMAGENET_CROP]
    return tf.ensure_shape(image, [IMAGENET_CROP, IMAGENET_CROP, 3])


def imagenet_train_augment(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Seed 000, appendix A.2: shorter side resized to a random size in [256, 384], random 224
    crop, flip with p = 1/2, brightness delta 32/255, hue delta 0.1, saturation and contrast
    factors in [0.6, 1.4]. uint8 in, float [0, 1] out."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 7, alg=_ALG))
    low, high = IMAGENET_TRAIN_RESIZE_RANGE
    size = tf.random.stateless_uniform([], seeds[0], minval=low, maxval=high + 1, dtype=tf.int32,
                                       alg=_ALG)
    image = resize_shorter_side(tf.cast(image, tf.float32) / 255.0, size)
    image = tf.image.stateless_random_crop(image, [IMAGENET_CROP, IMAGENET_CROP, 3], seeds[1])
    image = tf.image.stateless_random_flip_left_right(image, seeds[2])
    image = tf.image.stateless_random_brightness(image, IMAGENET_BRIGHTNESS_DELTA, seeds[3])
    image = tf.image.stateless_random_hue(image, IMAGENET_HUE_DELTA, seeds[4])
    image = tf.image.stateless_random_saturation(image, *IMAGENET_SATURATION_RANGE, seeds[5])
    image = tf.image.stateless_random_contrast(image, *IMAGENET_CONTRAST_RANGE, seeds[6])
    return tf.clip_by_value(image, 0.0, 1.0)


AUGMENTATIONS.register("none", Augmentation("none", "no augmentation",
                                            batch_fn=lambda images, seed: images))
AUGMENTATIONS.register("flip", Augmentation("flip", "horizontal flip (seed 004 'flip-only')",
                                            batch_fn=random_flip))
AUGMENTATIONS.register("crop1_flip", Augmentation(
    "crop1_flip", "pad 1, random crop, flip (seed 004 '1-crop-f')", batch_fn=_crop_and_flip(1)))
AUGMENTATIONS.register("crop4_flip", Augmentation(
    "crop4_flip", "pad 4, random crop, flip (seed 004 '4-crop-f')", batch_fn=_crop_and_flip(4)))
AUGMENTATIONS.register("imagenet", Augmentation(
    "imagenet", "seed 000 A.2 ImageNet recipe (imagenet2012 only)",
    example_fn=imagenet_train_augment))


def get_batch_augmentation(name: str, *, dataset_name: str, is_image: bool) -> Augmentation:
    """The augmentation `name`, checked to apply to fixed-size batches of this dataset."""
    augmentation = AUGMENTATIONS.get(name)
    if augmentation.is_identity:
        return augmentation
    if not is_image:
        raise ValueError(f"augmentation {name!r} needs images, but {dataset_name} is flat "
                         f"(non-image) data; use augment='none'")
    if augmentation.batch_fn is None:
        raise ValueError(f"augmentation {name!r} changes the image size and only applies to the "
                         f"streaming imagenet2012 pipeline, not to {dataset_name}")
    return augmentation
