"""The step-cost benchmark (tfregimes.benchmark): a tiny-setting run of the regularizers suite and its JSON."""

import json

import numpy as np
import pytest

from conftest import run_cli
from tfregimes.benchmark import BASELINE, SUITES, Setting, Timing, ratios, report, suite_variants, time_variants

TINY = Setting(model="mlp", input_shape=(8, 8, 1), num_classes=10, batch_size=16, warmup_steps=1, steps=1,
               rounds=2)
REGULARIZER_VARIANTS = ["plain", "fisher_m4", "fisher_m8", "fisher_m16", "proximal", "sam"]


def test_regularizers_suite_prints_step_times_and_ratios_as_its_last_line():
    variants = suite_variants("regularizers")
    assert [v.name for v in variants] == REGULARIZER_VARIANTS
    assert [v.options.get("fisher_subbatches") for v in variants[1:4]] == [4, 8, 16]
    timings = time_variants(variants, TINY, log=lambda line: None)
    result = json.loads(report(timings, TINY).splitlines()[-1])
    assert list(result) == REGULARIZER_VARIANTS
    for name, entry in result.items():
        assert set(entry) == {"step_ms", "ratio_to_plain"}
        assert entry["step_ms"] > 0
        timing = next(t for t in timings if t.name == name)
        assert entry["step_ms"] == pytest.approx(np.median(timing.round_ms), abs=1e-3)
        assert entry["ratio_to_plain"] == pytest.approx(np.median(timing.round_ratios), abs=1e-3)
    # Each round times every variant against plain steps timed just before it.
    plain = next(t for t in timings if t.name == "plain")
    assert len(plain.round_ms) == 2 * 6 and result["plain"]["ratio_to_plain"] == 1.0
    assert all(len(t.round_ratios) == 2 for t in timings)


def test_ratios_are_medians_of_paired_rounds():
    timings = [Timing(BASELINE, [10.0, 20.0, 12.0], [1.0, 1.0, 1.0], 1.0),
               Timing("other", [25.0, 60.0, 24.0], [2.5, 3.0, 2.0], 1.0)]
    assert ratios(timings) == {"plain": {"step_ms": 12.0, "ratio_to_plain": 1.0},
                               "other": {"step_ms": 25.0, "ratio_to_plain": 2.5}}
    with pytest.raises(ValueError, match="no 'plain' variant"):
        ratios(timings[1:])
    with pytest.raises(ValueError, match="first variant must be the 'plain' baseline"):
        time_variants(suite_variants("regularizers")[1:], TINY)


def test_suites_are_a_registry_and_variants_can_be_chosen():
    assert "regularizers" in SUITES
    assert [v.name for v in suite_variants("regularizers", ["sam"])] == ["plain", "sam"]
    with pytest.raises(ValueError, match="no variant fisher_m3"):
        suite_variants("regularizers", ["fisher_m3"])


def test_cli_runs_a_suite_and_ends_with_the_json_line():
    result = run_cli("tfregimes.benchmark", "--suite=regularizers", "--variants=sam", "--model=mlp",
                     "--input_shape=8,8,1", "--batch_size=8", "--warmup_steps=1", "--steps=1", "--rounds=1",
                     timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(json.loads(result.stdout.strip().splitlines()[-1])) == {"plain", "sam"}
