"""Strict flags: bad values fail at parse time naming the flag and the valid values; flags map onto RunConfig."""

import dataclasses
import re

import pytest
from absl import flags
from helpers import REPO, run_cli

from tfregimes.cli import common as cli_common
from tfregimes.cli import train_flag_rules, train_flags
from tfregimes.config import run_config as config_lib
from tfregimes.models import ModelOptions

FLAGS = flags.FLAGS


@pytest.fixture
def parse():
    def parse_args(*args):
        return FLAGS(["tfregimes.train", *args])
    yield parse_args
    FLAGS.unparse_flags()


def test_every_config_field_is_a_flag_and_every_model_option_a_config_field():
    for name in config_lib.field_names():
        assert name in FLAGS, name
    config = config_lib.RunConfig()
    for field in dataclasses.fields(ModelOptions):  # Same names and defaults (None is spelled 0 as a flag).
        assert (getattr(config, field.name) or None) == (field.default or None), field.name


def test_defaults_give_the_default_config(parse):
    parse()
    assert train_flags.config_from_flags() == config_lib.RunConfig()


def test_values_are_converted(parse):
    parse("--hidden_sizes=64,32", "--lr_boundaries=10,20.5", "--epochs=30", "--nesterov", "--verbose=2")
    config = train_flags.config_from_flags()
    assert config.hidden_sizes == (64, 32) and config.lr_boundaries == (10.0, 20.5)
    assert config.nesterov is True and config.verbose == 2


@pytest.mark.parametrize("args,message", [
    (["--model=resnet9000"], "--model=resnet9000: value should be one of"),
    (["--dataset=imagenet9000"], "--dataset=imagenet9000: must be one of cifar10, cifar100, digits"),
    (["--optimizer=sgdd"], "--optimizer=sgdd: value should be one of"),
    (["--augment=rotate"], "--augment=rotate: value should be one of"),
    (["--epochs=0"], "--epochs=0: 0 is not a positive integer"),
    (["--momentum=1.5"], "--momentum=1.5"),
    (["--lr_boundaries=10,40", "--epochs=30"], "--lr_boundaries must be increasing epochs inside (0, --epochs)"),
    (["--lr_boundaries=20,10"], "--lr_boundaries must be increasing epochs"),
    (["--lr_boundaries=ten"], "--lr_boundaries=['ten']: must be a comma-separated list"),
    (["--hidden_sizes=0"], "--hidden_sizes=['0']: must be a comma-separated list of positive integers"),
    (["--profile_batch=5"], "--profile_batch=5: must be empty or N,M"),
    (["--train_subset=10", "--batch_size=64"], "--train_subset must be 0 (all) or at least --batch_size"),
])
def test_bad_values_fail_naming_the_flag(parse, args, message):
    with pytest.raises(flags.IllegalFlagValueError) as error:
        parse(*args)
    assert message in str(error.value)


def test_unknown_flag_fails(parse):
    with pytest.raises(flags.UnrecognizedFlagError, match="learning_rat"):
        parse("--learning_rat=0.1")


def test_cli_rejects_a_bad_flag_before_building_anything(tmp_path):
    completed = run_cli("tfregimes.train", "--model=nope", f"--model_dir={tmp_path / 'run'}")
    assert completed.returncode != 0
    assert "--model=nope: value should be one of" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "run").exists()


def test_nested_flagfiles_resolve_relative_to_the_including_file_and_keep_order(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "common.cfg").write_text("# shared\n--epochs=7\n--momentum=0.5\n")
    (tmp_path / "exp.cfg").write_text("--flagfile=base/common.cfg\n\n--epochs=9\n")
    argv = cli_common.expand_flagfiles(["prog", f"--flagfile={tmp_path / 'exp.cfg'}", "--momentum=0.8"])
    assert argv == ["prog", "--epochs=7", "--momentum=0.5", "--epochs=9", "--momentum=0.8"]


def test_the_space_form_of_flagfile_resolves_like_the_equals_form(tmp_path):
    """`--flagfile PATH` (absl accepts it): nested includes still resolve from the including file, not the cwd."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "common.cfg").write_text("--epochs=7\n")
    (tmp_path / "exp.cfg").write_text("--flagfile=base/common.cfg\n--epochs=9\n")
    spaced = cli_common.expand_flagfiles(["prog", "--flagfile", str(tmp_path / "exp.cfg"), "--momentum=0.8"])
    assert spaced == cli_common.expand_flagfiles(["prog", f"--flagfile={tmp_path / 'exp.cfg'}", "--momentum=0.8"])
    assert spaced == ["prog", "--epochs=7", "--epochs=9", "--momentum=0.8"]
    with pytest.raises(flags.Error, match="needs a path"):
        cli_common.expand_flagfiles(["prog", "--flagfile"])


def test_a_flagfile_that_is_not_utf8_is_one_flags_error(tmp_path):
    (tmp_path / "latin1.cfg").write_bytes(b"# caf\xe9\n--epochs=3\n")
    with pytest.raises(flags.Error, match=r"not UTF-8 text \(byte 0xe9 at offset 5\); save it as UTF-8"):
        cli_common.expand_flagfiles(["prog", f"--flagfile={tmp_path / 'latin1.cfg'}"])


@pytest.mark.parametrize("flag", ["learning_rate=nan", "learning_rate=inf", "weight_decay=inf", "min_lr=nan"])
def test_non_finite_float_flags_are_refused_by_name(flag, parse):
    """absl's float parser takes nan/inf, which pass every bound (NaN compares false)."""
    with pytest.raises(flags.IllegalFlagValueError, match=rf"--{flag}: must be a finite number"):
        parse(f"--{flag}")
    FLAGS.unparse_flags()  # absl keeps the refused value after a failed parse.
    parse("--learning_rate=0.5", "--weight_decay=0.1")  # Finite values still parse.
    with pytest.raises(train_flag_rules.InvalidFlagsError, match=rf"--{flag}: must be a finite number"):
        train_flag_rules.parse_run_config([f"--{flag}"])  # A sweep's point, on its private flags, alike.


def test_a_non_finite_float_flag_of_another_front_end_is_refused(tmp_path):
    completed = run_cli("tfregimes.evaluate", f"--model={tmp_path}", "--dataset=digits", "--hessian_tolerance=inf")
    assert completed.returncode != 0 and "Traceback" not in completed.stderr
    assert "--hessian_tolerance=inf: must be a finite number" in completed.stderr


def test_missing_or_self_including_flagfile_is_a_flags_error(tmp_path):
    with pytest.raises(flags.Error, match="cannot read it"):
        cli_common.expand_flagfiles(["prog", f"--flagfile={tmp_path / 'absent.cfg'}"])
    (tmp_path / "loop.cfg").write_text("--flagfile=loop.cfg\n")
    with pytest.raises(flags.Error, match="nested more than 20 deep"):
        cli_common.expand_flagfiles(["prog", f"--flagfile={tmp_path / 'loop.cfg'}"])


# What each shipped flagfile must resolve to: the papers' settings (section cited), as its comment says. A flagfile
# missing here fails. Seed 000 A.2: per-pixel normalization (the CIFAR/SVHN default, "auto"), weight decay on all
# but BN gamma/beta (the FC bias decays: exclude_bn), Goyal et al.'s batch/learning-rate rule; seed 001 C.1:
# per-channel normalization, VGG-13-BN, batch 256, weight decay 1e-4; seed 004 appendix E and Table 1.
_SEED000_FAMILIES = {
    "cifar10_resnet20": dict(dataset="cifar10", model="resnet20", epochs=300, weight_decay=1e-4,
                             augment="crop4_flip"),
    "cifar100_wrn28_10": dict(dataset="cifar100", model="wrn28_10", epochs=250, weight_decay=5e-4,
                              augment="crop4_flip"),
    "svhn_wrn16_8": dict(dataset="svhn_cropped", model="wrn16_8", epochs=160, weight_decay=5e-4, dropout=0.5,
                         svhn_extra=True, augment="none"),
    "imagenet_resnet50": dict(dataset="imagenet2012", model="resnet50", epochs=100, weight_decay=1e-4,
                              augment="imagenet", zero_init_residual=True),
}
_SEED000_COMMON = dict(weight_decay_scope="exclude_bn", normalization="auto", momentum=0.9)


def _seed000(family, variant):
    imagenet = family.startswith("imagenet")
    small, large, reference = (256, 8192, 256) if imagenet else (128, 2048, 128)
    variants = {
        "base": {},
        "small_batch": dict(batch_size=small, learning_rate=0.1, optimizer="sgd", lr_schedule="step"),
        "large_batch": dict(batch_size=large, learning_rate=0.1, reference_batch_size=reference, warmup_epochs=5.0,
                            lr_schedule="step"),
        "lars": dict(batch_size=large, optimizer="lars", warmup_epochs=5.0, lars_trust_coefficient=0.001),
        "explore": dict(batch_size=large, learning_rate=0.1, reference_batch_size=reference, warmup_epochs=5.0,
                        lr_schedule="explore"),
    }
    return {**_SEED000_COMMON, **_SEED000_FAMILIES[family], **variants[variant]}


_SEED001_COMMON = dict(dataset="cifar10", model="vgg13_bn", batch_size=256, weight_decay=1e-4,
                       weight_decay_scope="all", normalization="per_channel", optimizer="sgd")
_SEED004_MODELS = {  # Appendix E: (model, epochs, batch, lr, nesterov, weight decay, boundaries).
    "cnn": ("plain_cnn6", 200, 128, 0.01, True, 1e-4, (100.0, 150.0)),
    "densenet_bc": ("densenet_bc", 300, 64, 0.1, True, 1e-4, (150.0, 225.0)),
    "wrn28_2": ("wrn28_2", 200, 128, 0.1, True, 5e-4, (60.0, 120.0, 160.0)),
    "resnet20": ("preact_resnet20", 164, 128, 0.1, False, 1e-4, (82.0, 123.0)),
}
_FISHER = dict(regularizer="fisher", fisher_alpha=1e-4, fisher_beta=20.0, fisher_subbatches=8, clip_global_norm=5.0)


def _seed004(dataset, model, fisher):
    name, epochs, batch, lr, nesterov, decay, boundaries = _SEED004_MODELS[model]
    return dict(dataset=dataset, model=name, epochs=epochs, batch_size=batch, learning_rate=lr, nesterov=nesterov,
                weight_decay=decay, weight_decay_scope="all", lr_boundaries=boundaries, augment="crop4_flip",
                momentum=0.9, normalization="auto", **(_FISHER if fisher else dict(regularizer="none")))


def expected_flagfile_values():
    expected = {
        "base/sgd_step.cfg": dict(optimizer="sgd", momentum=0.9, lr_schedule="step", lr_decay=0.1, weight_decay=0.0),
        "digits_cnn.cfg": dataclasses.asdict(config_lib.RunConfig()),  # The default job, spelled out.
        "smoke.cfg": dict(dataset="synthetic", model="mlp", epochs=2, weight_decay=0.0),
        "fashion_mnist_cnn.cfg": dict(dataset="fashion_mnist", model="cnn_small", epochs=15, weight_decay=5e-4),
        "cifar100_wrn.cfg": _seed000("cifar100_wrn28_10", "small_batch"),  # Seed 000's headline run.
        "seed001/c5_phase1_momentum.cfg": dict(_SEED001_COMMON, learning_rate=0.1, momentum=0.9,
                                               augment="crop4_flip", transition_epoch=100),
        "seed001/c5_phase1_no_momentum.cfg": dict(_SEED001_COMMON, learning_rate=0.9236708571873865, momentum=0.0,
                                                  augment="crop4_flip", transition_epoch=100),
        "seed001/c7_two_phase.cfg": dict(_SEED001_COMMON, learning_rate=0.9236708571873865, momentum=0.0,
                                         augment="none", phase2_learning_rate=0.005, phase2_momentum=0.95),
        "seed001/c7_baseline_three_stage.cfg": dict(_SEED001_COMMON, learning_rate=0.1, momentum=0.9,
                                                    augment="none", lr_schedule="step"),
        "seed004/fisher.cfg": dict(_FISHER, dataset="digits"),
    }
    for family in _SEED000_FAMILIES:
        for variant in ("base", "small_batch", "large_batch", "lars", "explore"):
            expected[f"seed000/{family}_{variant}.cfg"] = _seed000(family, variant)
    for dataset in ("cifar10", "cifar100"):
        for model in _SEED004_MODELS:
            if (dataset, model) == ("cifar100", "resnet20"):
                continue  # Not in the paper's Table 1.
            expected[f"seed004/{dataset}_{model}.cfg"] = _seed004(dataset, model, fisher=False)
            expected[f"seed004/{dataset}_{model}_fisher.cfg"] = _seed004(dataset, model, fisher=True)
    return expected


SHIPPED_FLAGFILES = sorted(str(p.relative_to(REPO / "flags")) for p in (REPO / "flags").rglob("*.cfg")
                           if "sweeps" not in p.parts)  # tfregimes.sweep's: tests/sweep/test_sweep.py


def test_every_shipped_flagfile_has_its_paper_values_listed():
    assert SHIPPED_FLAGFILES == sorted(expected_flagfile_values())


@pytest.mark.parametrize("flagfile", SHIPPED_FLAGFILES)
def test_every_shipped_flagfile_parses_fits_together_and_has_its_paper_values(parse, flagfile):
    parse(*cli_common.expand_flagfiles([f"--flagfile={REPO / 'flags' / flagfile}"]))
    config = train_flags.config_from_flags()
    train_flag_rules.check_flag_combinations(config)
    expected = expected_flagfile_values()[flagfile]
    got = {name: getattr(config, name) for name in expected}
    assert got == expected  # Values parsed from text: exact.


@pytest.mark.parametrize("args,message", [
    (["--optimizer=adam", "--momentum=0.5"], "--momentum only applies with --optimizer=sgd or lars"),
    (["--lr_schedule=cosine", "--lr_boundaries=5"], "--lr_boundaries only applies with --lr_schedule=step"),
    (["--min_lr=0.01"], "--min_lr only applies with --lr_schedule=cosine, poly, explore or plateau"),
    (["--phase2_learning_rate=0.1"], "--phase2_learning_rate only applies with --transition_epoch"),
    (["--flat_window=3"], "--flat_window only applies with --lr_schedule=explore"),
    (["--lr_schedule=cosine", "--min_lr=0.5", "--learning_rate=0.1"], "min_lr must be in [0, peak learning rate"),
])
def test_ignored_or_conflicting_flags_fail_before_training(parse, args, message):
    parse(*args)
    with pytest.raises(flags.ValidationError, match=re.escape(message)):
        train_flag_rules.check_flag_combinations(train_flags.config_from_flags())


def test_adam_with_default_momentum_is_fine(parse):
    parse("--optimizer=adam", "--learning_rate=0.001")
    train_flag_rules.check_flag_combinations(train_flags.config_from_flags())


@pytest.mark.parametrize("args,epochs,boundaries", [
    ([], 30, (15.0, 24.999)),  # The default job: 50 %, 83.33 % of 30 epochs.
    (["--epochs=5"], 5, (2.5, 4.1665)),
    (["--flagfile=flags/digits_cnn.cfg", "--epochs=10"], 10, (5.0, 8.333)),
    (["--lr_boundaries=25%,3", "--epochs=8"], 8, (2.0, 3.0)),  # Shares and epochs mix.
    (["--lr_boundaries=50%", "--transition_epoch=10", "--epochs=20"], 10, (5.0,)),  # A share of phase 1.
])
def test_boundaries_given_as_shares_follow_the_run(parse, args, epochs, boundaries):
    from tfregimes.training.phases import phases_from_config
    parse(*cli_common.expand_flagfiles(["prog", *[a.replace("flags/", f"{REPO}/flags/") for a in args]])[1:])
    config = train_flags.config_from_flags()
    train_flag_rules.check_flag_combinations(config)
    first = phases_from_config(config)[0]
    assert first.epochs == epochs
    assert first.lr_boundaries == pytest.approx(boundaries)


@pytest.mark.parametrize("args,message", [
    (["--lr_boundaries=100%"], "shares of the run inside (0%, 100%)"),
    (["--lr_boundaries=0%"], "shares of the run inside (0%, 100%)"),
    (["--lr_boundaries=60%,40%"], "--lr_boundaries must be increasing"),
    (["--lr_boundaries=12", "--epochs=10"], "to follow the run's length, give them as shares of it, e.g. 50%,75%"),
    (["--phase2_lr_boundaries=50%", "--transition_epoch=5"], "--phase2_lr_boundaries=['50%']: must be a comma"),
])
def test_out_of_range_boundaries_stay_errors(parse, args, message):
    with pytest.raises(flags.IllegalFlagValueError) as error:
        parse(*args)
    assert message in str(error.value)


def test_cosine_with_fewer_epochs_than_the_default_boundaries_is_fine(parse):
    parse("--lr_schedule=cosine", "--epochs=10")
    train_flag_rules.check_flag_combinations(train_flags.config_from_flags())


def test_a_flag_spelled_out_at_its_default_is_not_an_ignored_flag(parse):
    parse("--optimizer=adam", "--momentum=0.9", "--lars_trust_coefficient=0.001", "--learning_rate=0.001")
    train_flag_rules.check_flag_combinations(train_flags.config_from_flags())


def test_help_names_the_choice_that_reads_each_option():
    assert FLAGS["min_lr"].help.endswith("Only with --lr_schedule=cosine, poly, explore or plateau.")
    assert FLAGS["phase2_momentum"].help.endswith("Only with --phase2_optimizer=sgd or lars.")
    assert FLAGS["fisher_beta"].help.endswith("Only with --regularizer=fisher.")
