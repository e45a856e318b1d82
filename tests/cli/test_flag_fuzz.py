"""Flag fuzzing (issue 12, hardening): any combination of train flags and values parses into a RunConfig that
passes the combination checks, or fails with absl's flag error naming the flag; never another exception. Parsing
only (nothing is built), so a few hundred examples take seconds."""

from absl import flags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfregimes.cli import train_flag_rules, train_flags

FLAGS = flags.FLAGS
NAMES = sorted(name for names in (names for _, names in train_flags.HELP_GROUPS.groups) for name in names)


def _values(name):
    flag = FLAGS[name]
    candidates = [st.text(max_size=8), st.integers(-3, 3000).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["", "0", "1,2", "-1"])]
    if getattr(flag.parser, "enum_values", None):
        candidates.append(st.sampled_from(list(flag.parser.enum_values)))
    if flag.default is not None:
        candidates.append(st.just(flag.default_as_str.strip("'")))
    return st.one_of(candidates)


arguments = st.lists(st.sampled_from(NAMES), max_size=6, unique=True).flatmap(
    lambda names: st.tuples(*[st.tuples(st.just(name), _values(name)) for name in names]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments)
def test_any_flags_are_a_config_or_a_flag_error(pairs):
    argv = ["tfregimes.train"]
    for name, value in pairs:
        argv.append(f"--{name}" if FLAGS[name].boolean and value in ("true", "") else f"--{name}={value}")
    try:
        FLAGS(argv)
        config = train_flags.config_from_flags()
        train_flag_rules.check_flag_combinations(config)
    except flags.Error:
        pass  # What the CLI prints as one "FATAL Flags parsing error" line.
    finally:
        FLAGS.unparse_flags()


def test_the_fuzzed_flags_are_every_train_flag():
    defined = {flag.name for flag in FLAGS.flags_by_module_dict()["tfregimes.training.run_flags"]}
    assert set(NAMES) == defined and "transition_epoch" in NAMES
