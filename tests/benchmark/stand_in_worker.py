"""A stand-in for the PyTorch worker where PyTorch is not installed: the same process and protocol, served by
`torch_worker.main`, with a numpy trainer for each twin (softmax regression by SGD with momentum, a real epoch of
work). `--fail=segfault|raise|hang --at_epoch=N` kills the worker by SIGSEGV (the crash of issue 24 item 8), raises,
or hangs (sleeps for an hour, as a deadlocked compile would), at its Nth epoch (counted over both runners; 0: while
building)."""

import argparse
import os
import signal
import time

import numpy as np

from tfregimes.benchmark import torch_worker

parser = argparse.ArgumentParser()
parser.add_argument("--fail", choices=["segfault", "raise", "hang"])
parser.add_argument("--at_epoch", type=int, default=0)
ARGS = parser.parse_args()
EPOCHS = [0]


def fail_here() -> None:
    if ARGS.fail == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if ARGS.fail == "hang":
        time.sleep(3600)
    raise RuntimeError("the stand-in failed on purpose")


class SoftmaxSGD:
    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, learning_rate: float):
        self.x = images.reshape(len(images), -1).astype(np.float32)
        self.y = np.eye(int(labels.max()) + 1, dtype=np.float32)[labels]
        self.w = np.zeros((self.x.shape[1], self.y.shape[1]), np.float32)
        self.velocity = np.zeros_like(self.w)
        self.batch_size, self.learning_rate = batch_size, learning_rate

    def epoch(self) -> tuple[float, float]:
        EPOCHS[0] += 1
        if ARGS.fail and EPOCHS[0] == ARGS.at_epoch:
            fail_here()
        started = time.perf_counter()
        for _ in range(20):  # Enough arithmetic that the worker's CPU time is clearly its own.
            for start in range(0, len(self.x) - self.batch_size + 1, self.batch_size):
                x, y = self.x[start:start + self.batch_size], self.y[start:start + self.batch_size]
                logits = x @ self.w
                p = np.exp(logits - logits.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                self.velocity = 0.9 * self.velocity + x.T @ (p - y) / len(x)
                self.w -= self.learning_rate * self.velocity
        return time.perf_counter() - started, 0.0


def build(request: dict, images: np.ndarray, labels: np.ndarray) -> tuple[str, dict]:
    if ARGS.fail and ARGS.at_epoch == 0:
        fail_here()
    return "stand-in", {name: SoftmaxSGD(images, labels, request["batch_size"], request["learning_rate"])
                        for name in torch_worker.RUNNERS}


if __name__ == "__main__":
    torch_worker.main(build)
