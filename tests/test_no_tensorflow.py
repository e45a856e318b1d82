"""Tools that only read results start without TensorFlow (issue 23, item 3): importing the package, the run
config, the statistics, results and report, and running `python -m tfregimes.results --help`, in a fresh
interpreter, leaves TensorFlow and Keras unimported. A module-level `import tensorflow` anywhere they reach fails
here, naming the modules that were imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import REPO

FRAMEWORKS = ("tensorflow", "keras")

_PROBE = """
import json, runpy, sys
for module in {modules!r}:
    __import__(module)
if {main!r}:
    sys.argv = [{main!r}, "--help"]
    try:
        runpy.run_module({main!r}, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {frameworks!r})))
"""


def _imported_frameworks(modules: tuple[str, ...], main: str = "") -> list[str]:
    code = _PROBE.format(modules=modules, main=main, frameworks=FRAMEWORKS)
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


# cli.results and cli.report both define --output, so each front end is imported in an interpreter of its own.
@pytest.mark.parametrize("modules", [
    ("tfregimes", "tfregimes.config", "tfregimes.analysis", "tfregimes.results", "tfregimes.report"),
    ("tfregimes.cli.results",),
    ("tfregimes.cli.report",),
    ("tfregimes.benchmark.torch_worker",),  # The PyTorch twins' process (issue 24 item 8: the two crashed together).
])
def test_reading_results_imports_no_framework(modules):
    assert _imported_frameworks(modules) == []


@pytest.mark.parametrize("main", ["tfregimes.results", "tfregimes.report"])
def test_the_help_of_results_and_report_starts_without_a_framework(main):
    assert _imported_frameworks((), main=main) == []


def test_the_first_tensorflow_import_is_still_quiet():
    # `import tfregimes` no longer imports TensorFlow, but whatever imports it first (here Keras) does so with
    # TensorFlow's C++ start-up lines filtered (tfregimes.base.quiet_start).
    from tfregimes.base.quiet_start import is_noise

    completed = subprocess.run([sys.executable, "-c", "import tfregimes, sys; assert 'tensorflow' not in sys.modules;"
                                "import keras; assert 'tensorflow' in sys.modules"],
                               cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    noise = [line for line in completed.stderr.splitlines() if is_noise(line, has_nvidia_device=True)]
    assert noise == [], completed.stderr
