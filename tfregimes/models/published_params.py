"""Published parameter counts that tests/models/test_models.py checks the builds against.

Counts are trainable parameters (weights, biases, BN gamma/beta; not BN moving statistics), at
the input shape and number of classes of the publication. A Python table rather than a data
file, so that it ships with the package without packaging configuration.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PublishedCount:
    """`params` as published; `rounded_to`: the unit the publication rounded to (0: an exact count, which the build
    must equal); `omitted`: parameters the publication has and our build leaves out on purpose (said in `source`)."""

    model: str
    input_shape: tuple[int, ...]
    num_classes: int
    params: int
    source: str
    rounded_to: int = 0
    omitted: int = 0

    def matches(self, count: int) -> bool:
        return abs(count + self.omitted - self.params) <= self.rounded_to / 2


PUBLISHED_PARAMS = (
    PublishedCount("resnet20", (32, 32, 3), 10, 270_000,
                   "He et al. 2016, Deep Residual Learning, Table 6 (0.27M, rounded)", rounded_to=10_000),
    PublishedCount("wrn28_10", (32, 32, 3), 10, 36_479_194,
                   "osmr/imgclsmob's CIFAR-10 table (Zagoruyko & Komodakis 2016 round it to 36.5M)"),
    PublishedCount("resnet50", (224, 224, 3), 1000, 25_557_032,
                   "torchvision resnet50 and osmr/imgclsmob's ImageNet-1K table (25.6M)"),
    PublishedCount("densenet_bc", (32, 32, 3), 10, 769_162,
                   "osmr/imgclsmob's CIFAR-10 table, DenseNet-BC-100 (k=12); Huang et al. "
                   "2017, Table 2, rounds it to 0.8M"),
    PublishedCount("vgg13_bn", (32, 32, 3), 10, 9_416_010,
                   "kuangliu/pytorch-cifar VGG13 (BN, one linear classifier), README table; its 10 convs also "
                   "have biases (64+64+128+128+256+256+512·4 = 2,944), ours do not (BN follows)", omitted=2_944),
    PublishedCount("resnet18", (32, 32, 3), 10, 11_173_962,
                   "kuangliu/pytorch-cifar ResNet18 (CIFAR stem), README table"),
)
