"""TensorFlow's C++ start-up lines, filtered from stderr.

TensorFlow 2.21 writes a few lines through absl before its logging is initialized, so TF_CPP_MIN_LOG_LEVEL does not
hide them: a oneDNN note, "Could not find cuda drivers", and, on a machine without an NVIDIA GPU, "failed call to
cuInit" as an E(rror) line on every start. TensorFlow is imported and its devices listed (which is when cuInit runs)
with stderr captured; then every captured line except those is written back. Listing physical devices does not
initialize the runtime, so logical devices can still be configured afterwards.

`import tfregimes` only calls `filter_tensorflow_start`, which imports nothing heavy: tools that read results start
without TensorFlow (seconds of CPU), and whichever module first imports TensorFlow (or Keras, which imports it),
from any package, gets the filtered start.
"""

from __future__ import annotations

import glob
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_NOISE = [r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
          r"port\.cc:\d+\] oneDNN custom operations are on",
          r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"]
# cuInit fails on every machine without an NVIDIA device; where there is one, its failure is news and stays.
_NO_GPU_NOISE = [r"cuda_platform\.cc:\d+\] failed call to cuInit"]


def is_noise(line: str, has_nvidia_device: bool) -> bool:
    patterns = _NOISE + ([] if has_nvidia_device else _NO_GPU_NOISE)
    return any(re.search(pattern, line) for pattern in patterns)


@contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Captures file descriptor 2 (where TensorFlow's C++ code writes) and writes back all but the noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # No real stderr (e.g. an embedded interpreter): nothing to filter.
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
    has_nvidia_device = bool(glob.glob("/dev/nvidia[0-9]*"))
    kept = [line for line in text.splitlines() if line.strip() and not is_noise(line, has_nvidia_device)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)


def _list_devices() -> None:
    sys.modules["tensorflow"].config.list_physical_devices()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the path finder does, with its module's execution wrapped in `_filtered_stderr`.
    Removes itself on first use: TensorFlow is imported once."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute: Callable = spec.loader.exec_module

        def exec_module(module) -> None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            with _filtered_stderr():
                execute(module)
                _list_devices()

        spec.loader.exec_module = exec_module  # This loader instance loads only tensorflow/__init__.py.
        return spec


def filter_tensorflow_start() -> None:
    """Makes the first import of TensorFlow, wherever it happens, filter its start-up lines; imports nothing."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowFinder())

