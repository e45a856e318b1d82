"""TensorFlow's C++ start-up lines, filtered from stderr.

TensorFlow 2.21 writes a few lines through absl before its logging is initialized, so TF_CPP_MIN_LOG_LEVEL does not
hide them: a oneDNN note, "Could not find cuda drivers", and, on a machine without an NVIDIA GPU, "failed call to
cuInit" as an E(rror) line on every start. `import_tensorflow` imports TensorFlow and lists its devices (which is
when cuInit runs) with stderr captured, then writes back every captured line except those. Listing physical
devices does not initialize the runtime, so logical devices can still be configured afterwards.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import tempfile

_NOISE = [r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
          r"port\.cc:\d+\] oneDNN custom operations are on",
          r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"]
# cuInit fails on every machine without an NVIDIA device; where there is one, its failure is news and stays.
_NO_GPU_NOISE = [r"cuda_platform\.cc:\d+\] failed call to cuInit"]


def is_noise(line: str, has_nvidia_device: bool) -> bool:
    patterns = _NOISE + ([] if has_nvidia_device else _NO_GPU_NOISE)
    return any(re.search(pattern, line) for pattern in patterns)


def import_tensorflow() -> None:
    """Imports TensorFlow with its start-up noise filtered; does nothing if it is already imported."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # No real stderr (e.g. an embedded interpreter): import as is.
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
    has_nvidia_device = bool(glob.glob("/dev/nvidia[0-9]*"))
    kept = [line for line in text.splitlines() if line.strip() and not is_noise(line, has_nvidia_device)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)
