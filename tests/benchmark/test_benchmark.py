"""The benchmarks (tfregimes.benchmark): tiny-setting runs of the regularizers, diagnostics, minimum_metrics and
throughput suites and their JSON."""

import dataclasses
import json
import math

import numpy as np
import pytest
from helpers import run_cli

from tfregimes.benchmark import torch_reference, torch_worker
from tfregimes.benchmark.diagnostics_overhead import (
    DiagnosticsSetting,
    SettingError,
    diagnostics_report,
    diagnostics_result,
    measurement_period,
    time_diagnostics,
)
from tfregimes.benchmark.minimum_metrics import BASELINE as MINIMUM_BASELINE
from tfregimes.benchmark.minimum_metrics import MinimumSetting, baseline_log_det, time_minimum_metrics
from tfregimes.benchmark.suites import BASELINE, SUITES, suite_variants
from tfregimes.benchmark.throughput import ThroughputSetting
from tfregimes.benchmark.timing import Setting, Timing, ratios, report, time_variants
from tfregimes.config.run_config import RunConfig
from tfregimes.models import build_model

TINY = Setting(model="mlp", input_shape=(8, 8, 1), num_classes=10, batch_size=16, warmup_steps=1, steps=1,
               rounds=2)
REGULARIZER_VARIANTS = ["plain", "fisher_m4", "fisher_m8", "fisher_m16", "fisher_m8_subbatches", "proximal", "sam"]


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
    assert len(plain.round_ms) == 2 * len(REGULARIZER_VARIANTS) and result["plain"]["ratio_to_plain"] == 1.0
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


# --suite=diagnostics: the per-epoch overhead of the training-time diagnostics on the default job (digits).
# digits' 1437 examples: the momentum scale is measured every 5 epochs, the measurement period.
DIAGNOSTICS_TINY = DiagnosticsSetting(model="mlp", epochs=5, rounds=2)


@pytest.fixture(scope="module")
def diagnostics_timing():
    return time_diagnostics(DIAGNOSTICS_TINY, log=lambda line: None)


def test_diagnostics_overhead_is_the_median_of_paired_round_ratios(diagnostics_timing):
    timing = diagnostics_timing
    default, run = DiagnosticsSetting(), RunConfig()
    assert (default.dataset, default.model, default.batch_size, default.seed) == \
        (run.dataset, run.model, run.batch_size, run.seed) == ("digits", "cnn_small", 64, 0)
    assert timing.setting.diagnostics == ("angular", "elr", "momentum") and timing.period == 5
    for variant in ("plain", "diagnostics"):
        rounds = timing.round_epoch_ms[variant]
        assert len(rounds) == 2 and all(len(epochs) == 5 for epochs in rounds)
        assert all(0 < ms < 60_000 for epochs in rounds for ms in epochs)
        assert timing.first_epoch_ms[variant] > 0
        assert timing.epoch_ms(variant) == pytest.approx(np.median(np.concatenate(rounds)))
    ratios_ = [np.mean(d) / np.mean(p) for d, p in zip(timing.round_epoch_ms["diagnostics"],
                                                        timing.round_epoch_ms["plain"])]
    assert timing.overhead_percent == pytest.approx(100 * (np.median(ratios_) - 1))
    assert timing.overhead_percent_iqr == pytest.approx(tuple(100 * (np.percentile(ratios_, [25, 75]) - 1)))
    assert timing.first_epoch_extra_ms == pytest.approx(
        timing.first_epoch_ms["diagnostics"] - timing.first_epoch_ms["plain"])
    # The time inside the diagnostics' hooks: part of each epoch, and its mean as a share of plain's epoch.
    inside = timing.round_callback_ms
    assert len(inside) == 2 and all(len(epochs) == 5 for epochs in inside)
    assert all(0 < ms < total for ms_round, total_round in zip(inside, timing.round_epoch_ms["diagnostics"])
               for ms, total in zip(ms_round, total_round))
    assert timing.callback_percent == pytest.approx(100 * np.mean(inside) / timing.epoch_ms("plain"))


def test_diagnostics_report_ends_with_the_documented_json(diagnostics_timing):
    timing = diagnostics_timing
    result = json.loads(diagnostics_report(timing).splitlines()[-1])
    assert result == diagnostics_result(timing)
    assert set(result) == {"plain", "diagnostics", "stop_check", "setting"}
    # The stop's check: one inference pass over digits' 1437 clean training examples, timed rounds times.
    assert result["stop_check"]["examples"] == 1437 and len(timing.stop_check_ms) == 2
    assert result["stop_check"]["check_ms"] == pytest.approx(np.median(timing.stop_check_ms), abs=1e-3)
    assert result["stop_check"]["percent_of_epoch"] == pytest.approx(
        100 * np.median(timing.stop_check_ms) / timing.epoch_ms("plain"), abs=1e-3)
    assert "stop check (--stop_at_train_loss/_accuracy, 1437 clean training examples)" in diagnostics_report(timing)
    assert set(result["plain"]) == {"epoch_ms", "first_epoch_ms"}
    assert set(result["diagnostics"]) == {"epoch_ms", "first_epoch_ms", "overhead_percent", "overhead_percent_iqr",
                                          "callback_ms", "callback_percent", "first_epoch_extra_ms"}
    assert result["diagnostics"]["overhead_percent"] == pytest.approx(timing.overhead_percent, abs=1e-3)
    assert result["plain"]["epoch_ms"] == pytest.approx(timing.epoch_ms("plain"), abs=1e-3)
    assert result["setting"] == {"dataset": "digits", "model": "mlp", "batch_size": 64, "seed": 0,
                                 "train_subset": 0, "diagnostics": ["angular", "elr", "momentum"], "every": 1,
                                 "epochs": 5, "rounds": 2, "trainer_epoch": True, "steps_per_epoch": 22,
                                 "measurement_period": 5}


def test_measurement_period_and_setting_checks():
    class Diagnostic:
        def __init__(self, **intervals):
            self.__dict__.update(intervals)

    assert measurement_period([]) == 1
    assert measurement_period([Diagnostic(every=2), Diagnostic(every=2, probe_every=6), object()]) == 6
    with pytest.raises(SettingError, match="unknown training diagnostic 'nope'.*angular"):
        DiagnosticsSetting(diagnostics=("angular", "nope")).resolved()
    with pytest.raises(SettingError, match="no diagnostics"):
        DiagnosticsSetting(diagnostics=()).resolved()


def test_cli_times_the_diagnostics_with_run_config_defaults_and_ends_with_the_json_line():
    result = run_cli("tfregimes.benchmark", "--suite=diagnostics", "--model=mlp", "--diagnostics=angular,elr",
                     "--epochs=1", "--rounds=1", "--notrainer_epoch", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {"plain", "diagnostics", "stop_check", "setting"} and last["diagnostics"]["epoch_ms"] > 0
    # Flags not given take RunConfig's values, not the regularizers suite's (resnet20, batch 128).
    assert (last["setting"]["dataset"], last["setting"]["batch_size"], last["setting"]["model"]) == \
        ("digits", 64, "mlp")
    assert last["setting"]["diagnostics"] == ["angular", "elr"] and last["setting"]["epochs"] == 1
    assert last["setting"]["trainer_epoch"] is False and "training only" in result.stdout


@pytest.mark.parametrize("suite, flag", [("diagnostics", "--steps=2"), ("regularizers", "--dataset=digits")])
def test_cli_refuses_a_flag_of_the_other_suite(suite, flag):
    result = run_cli("tfregimes.benchmark", f"--suite={suite}", flag, timeout=120)
    assert result.returncode != 0
    assert f"{flag.split('=')[0]} applies to --suite=" in result.stderr and f"not to --suite={suite}" in result.stderr
    assert "Timing suite" not in result.stdout  # Refused before anything ran.


# --- minimum_metrics: γ̂ per subset against an independent baseline ---

def test_minimum_metrics_times_each_variant_against_the_baseline_and_both_routes_agree():
    setting = MinimumSetting(model="mlp", input_shape=(8, 8, 1), samples=12, rounds=2)
    result = time_minimum_metrics(setting, log=lambda line: None)
    variants = result["variants"]
    assert list(variants) == [MINIMUM_BASELINE, "fisher_statistics", "jacobian_only", "svd_of_jacobian",
                              "loss_and_gradient", "hessian_vector_product"]
    assert variants[MINIMUM_BASELINE]["round_ratios"] == [1.0] * 2
    for timing in variants.values():
        assert len(timing["round_ratios"]) == 2 and timing["ms"] > 0
        assert timing["ratio_to_baseline"] == pytest.approx(np.median(timing["round_ratios"]), abs=2e-3)
        assert timing["cpu_ratio_to_baseline"] == pytest.approx(np.median(timing["round_cpu_ratios"]), abs=2e-3)
    values = result["values"]  # γ̂ by the library's Gram-matrix route and by the independent baseline.
    assert values["weights"] == 50826 and np.isfinite(values["log_det"])
    assert values["log_det"] == pytest.approx(values["baseline_log_det"], rel=1e-9)
    only = time_minimum_metrics(dataclasses.replace(setting, rounds=1), only=("jacobian_only",),
                                log=lambda line: None)
    assert list(only["variants"]) == [MINIMUM_BASELINE, "jacobian_only"]
    with pytest.raises(ValueError, match="no minimum_metrics variant nope; the variants are: baseline_logdet"):
        time_minimum_metrics(setting, only=("nope",), log=lambda line: None)


def test_baseline_log_det_is_the_cholesky_route_of_an_independent_gram_matrix():
    gram = np.array([[4.0, 2.0], [2.0, 5.0]])
    assert baseline_log_det(gram) == pytest.approx(math.log(16.0))  # det = 20 − 4


def test_cli_runs_the_minimum_metrics_suite_and_ends_with_the_json_line():
    result = run_cli("tfregimes.benchmark", "--suite=minimum_metrics", "--model=mlp", "--input_shape=8,8,1",
                     "--samples=10", "--rounds=1", "--variants=fisher_statistics", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {"variants", "values", "setting", "machine"}
    assert set(last["variants"]) == {"baseline_logdet", "fisher_statistics"} and last["setting"]["samples"] == 10
    refused = run_cli("tfregimes.benchmark", "--suite=minimum_metrics", "--batch_size=8", timeout=120)
    assert refused.returncode != 0 and "--samples sets its examples" in refused.stderr


# --- throughput: the trainer's epoch against model.fit (and PyTorch when installed) ---

def test_cli_runs_the_throughput_suite_on_a_tiny_job_and_ends_with_the_json_line():
    result = run_cli("tfregimes.benchmark", "--suite=throughput", "--model=mlp", "--dataset=digits",
                     "--batch_size=32", "--train_subset=128", "--rounds=2", timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = json.loads(result.stdout.strip().splitlines()[-1])["jobs"]
    assert (job["model"], job["dataset"], job["batch_size"], job["steps_per_epoch"]) == ("mlp", "digits", 32, 4)
    # The PyTorch worker was asked: it has no twin of the MLP, or no PyTorch.
    assert job["torch"] in ("skipped: no PyTorch twin of mlp", f"skipped: {torch_worker.NOT_INSTALLED}")
    assert set(job["variants"]) == {"trainer", "keras_fit"}
    keras_fit, trainer = job["variants"]["keras_fit"], job["variants"]["trainer"]
    assert keras_fit["ratio_to_keras_fit"] == 1.0 and len(trainer["round_images_per_s"]) == 2
    ratios = [t / k for t, k in zip(trainer["round_images_per_s"], keras_fit["round_images_per_s"])]
    assert trainer["ratio_to_keras_fit"] == pytest.approx(np.median(ratios), rel=2e-3)
    assert trainer["images_per_s"] == pytest.approx(np.median(trainer["round_images_per_s"]), rel=1e-3)
    assert set(job["machine"]) == {"cpus", "load_average_1min", "threads"}
    refused = run_cli("tfregimes.benchmark", "--suite=throughput", "--dataset=digits", timeout=120)
    assert refused.returncode != 0 and "--dataset and --batch_size need --model" in refused.stderr


@pytest.mark.parametrize("name, input_shape", [("resnet20", (32, 32, 3)), ("cnn_small", (8, 8, 1))])
def test_pytorch_twins_hold_the_keras_networks_parameter_counts(name, input_shape, tmp_path):
    # In the worker, as the suite builds them: PyTorch never shares this process, which has imported TensorFlow.
    if not torch_reference.torch_available():
        pytest.skip("PyTorch is the optional [bench] extra")
    network = build_model(name, input_shape=input_shape, num_classes=10)
    count = sum(int(np.prod(v.shape)) for v in network.trainable_variables)
    images = np.random.default_rng(0).normal(size=(4, *input_shape)).astype(np.float32)
    np.savez(tmp_path / "arrays.npz", images=images, labels=np.arange(4) % 10)
    request = {"arrays": str(tmp_path / "arrays.npz"), "model": name, "input_shape": list(input_shape),
               "num_classes": 10, "parameters": count, "batch_size": 2, "learning_rate": 0.01, "seed": 0}
    with torch_worker.TorchWorker(request, tmp_path / "err") as worker:
        wall, cpu = worker.run("torch_eager", 1)
    assert worker.status[0].isdigit() and wall > 0 and cpu > 0
    with pytest.raises(torch_worker.WorkerFailed, match="not the same network"):
        torch_worker.TorchWorker({**request, "parameters": count + 1}, tmp_path / "err")


def test_throughput_settings_refuse_xla_under_op_determinism_and_unknown_variants():
    with pytest.raises(ValueError, match="XLA needs --nodeterministic"):
        ThroughputSetting(trainer_variants=("jit_compile",)).check()
    with pytest.raises(ValueError, match="XLA needs --nodeterministic"):
        ThroughputSetting(jit_compile=True).check()
    with pytest.raises(ValueError, match="unknown trainer variant fp8; known: mixed_bfloat16"):
        ThroughputSetting(trainer_variants=("fp8",)).check()
    ThroughputSetting(trainer_variants=("jit_compile", "mixed_bfloat16"), deterministic=False).check()
