"""PyTorch twins of two tfregimes networks, for `--suite=throughput`: the same architecture trained by the same
algorithm (SGD with momentum on softmax cross-entropy, batch norm in training mode), eager and `torch.compile`d.

PyTorch is optional (`pip install -e .[bench]`): `torch_available()` says whether it imports, and nothing here
imports it before a twin is asked for. A twin must hold exactly as many trainable parameters as the Keras network
(`build_torch_twin` checks), so that the two frameworks time the same arithmetic.

    resnet20   He et al. 2016's CIFAR ResNet-20 (tfregimes.models.cifar_resnet): 3×3 conv 16, BN, ReLU; three
               stages of three basic blocks (16, 32, 64 filters, stride 2 entering stages 2 and 3) with option A
               shortcuts (subsample, zero-pad the new channels); global average pooling; dense
    cnn_small  tfregimes.models.plain_cnn's default CNN: conv 32, 32, 64 (3×3, BN, ReLU), 2×2 max-pool after the
               2nd and 3rd, global average pooling, dense
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np

TWINS = ("resnet20", "cnn_small")


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch_version() -> str:
    return _modules()[0].__version__


def _modules():
    import torch  # Optional dependency: imported only when a twin is built.
    from torch import nn
    return torch, nn


def _resnet20(input_shape, num_classes):
    torch, nn = _modules()

    class Block(nn.Module):
        def __init__(self, inputs: int, filters: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(filters, eps=1e-5, momentum=0.1)  # Keras' momentum 0.9
            self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(filters, eps=1e-5, momentum=0.1)
            self.stride, self.pad = stride, filters - inputs

        def forward(self, x):
            shortcut = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
            if self.pad:  # Option A: zero channels split before and after the old ones.
                shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(shortcut + self.bn2(self.conv2(y)))

    layers, inputs = [], 16
    for stage, filters in enumerate((16, 32, 64)):
        for index in range(3):
            layers.append(Block(inputs, filters, 2 if stage > 0 and index == 0 else 1))
            inputs = filters
    return nn.Sequential(nn.Conv2d(input_shape[-1], 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))


def _cnn_small(input_shape, num_classes):
    _, nn = _modules()
    layers, inputs = [], input_shape[-1]
    for index, width in enumerate((32, 32, 64), start=1):
        layers += [nn.Conv2d(inputs, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        if index in (2, 3):
            layers.append(nn.MaxPool2d(2, ceil_mode=True))  # Keras' padding="same" pooling
        inputs = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))


def build_torch_twin(name: str, input_shape: tuple[int, ...], num_classes: int, keras_parameters: int):
    """The twin of tfregimes' `name`; fails if its trainable parameter count differs from `keras_parameters`."""
    builders = {"resnet20": _resnet20, "cnn_small": _cnn_small}
    if name not in builders:
        raise ValueError(f"no PyTorch twin of {name!r}; twins exist for: {', '.join(TWINS)}")
    torch, _ = _modules()
    torch.manual_seed(0)
    model = builders[name](input_shape, num_classes)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if count != keras_parameters:
        raise AssertionError(f"the PyTorch {name} has {count} trainable parameters, the Keras one "
                             f"{keras_parameters}: not the same network")
    return model


class TorchTrainer:
    """Epochs of SGD (momentum 0.9) on in-memory arrays (NHWC float32 images, int labels), reshuffled per epoch."""

    def __init__(self, model, images: np.ndarray, labels: np.ndarray, batch_size: int, *, learning_rate: float,
                 compiled: bool, seed: int = 0):
        torch, nn = _modules()
        self.torch = torch
        self.model = model.train()
        forward = torch.compile(model) if compiled else model  # The usual use: compile the module, step eagerly.
        self.images = torch.from_numpy(np.ascontiguousarray(np.transpose(images, (0, 3, 1, 2))))
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.batch_size = batch_size
        self.steps = len(images) // batch_size
        self.optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            self.optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(forward(x), y)
            loss.backward()
            self.optimizer.step()
            return loss

        self._step = step
        self._generator = torch.Generator().manual_seed(seed)

    def epoch(self) -> tuple[float, float]:
        """(seconds, last loss) of one epoch of `steps` batches."""
        order = self.torch.randperm(len(self.images), generator=self._generator)
        started = time.perf_counter()
        loss = None
        for step in range(self.steps):
            indices = order[step * self.batch_size:(step + 1) * self.batch_size]
            loss = self._step(self.images[indices], self.labels[indices])
        value = float(loss.detach())  # Waits for the last step.
        return time.perf_counter() - started, value
