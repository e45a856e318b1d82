"""What every CLI shares: quiet logs, a failed write in one line, help by group and flagfiles read relative to
the file that names them. Imports no TensorFlow, so results and report start without it; the dataset flag's rule,
which needs the dataset registry, is in `dataset_flag`."""

from __future__ import annotations

import errno
import math
import os
import sys
import textwrap

from absl import app, flags, logging


def quiet_python_logs() -> None:
    """TensorFlow's Python INFO lines (SavedModel writing, …) only when asked for with --verbosity."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


def describe_os_error(error: OSError) -> str:
    """One line for a failed write: what, why, and what to do."""
    what = f"cannot write {error.filename}: {error.strerror}" if error.filename else str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"{what}; free some space and rerun the same command: the run resumes from its last completed "
                "epoch")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{what}; pass a --model_dir you can write to"
    return what


class HelpGroups:
    """The flags a CLI defines, in groups by concern, for `--help`: `begin(title)` before a group's definitions,
    `end()` after the last one; a group holds the flags defined in between."""

    def __init__(self):
        self.groups: list[tuple[str, list[str]]] = []
        self._title: str | None = None
        self._before: set[str] = set()

    def begin(self, title: str) -> None:
        self.end()
        self._title, self._before = title, set(flags.FLAGS)

    def end(self) -> None:
        if self._title is not None:
            self.groups.append((self._title, [name for name in flags.FLAGS if name not in self._before
                                              and name == flags.FLAGS[name].name]))
            self._title = None

    def text(self, full: bool = False) -> str:
        lines = []
        for title, names in self.groups:
            lines += ["", f"{title}:"]
            for name in names:
                lines += flag_help_lines(name)
        if full:
            ours = {name for _, names in self.groups for name in names}
            others = sorted(name for name in flags.FLAGS if name not in ours and name == flags.FLAGS[name].name)
            lines += ["", "Other flags (absl, TensorFlow):"]
            lines += textwrap.wrap(", ".join(f"--{name}" for name in others), width=110, initial_indent="  ",
                                   subsequent_indent="  ")
        return "\n".join(lines)


def flag_help_lines(name: str) -> list[str]:
    """`  --name=default` and its help, wrapped: one flag of a `--help` listing."""
    flag = flags.FLAGS[name]
    default = "" if flag.default is None else flag.default_as_str.strip("'")
    lines = [f"  --{name}={default}" if not flag.boolean else f"  --[no]{name} (default {default})"]
    return lines + textwrap.wrap(flag.help, width=110, initial_indent="      ", subsequent_indent="      ")


def module_flags_text(module_name: str) -> str:
    """The flags a front end defines in its own module (for a `--help` without groups)."""
    defined = flags.FLAGS.flags_by_module_dict().get(module_name, [])
    names = list(dict.fromkeys(flag.name for flag in defined))
    return "\n".join(["", "Flags:", *(line for name in names for line in flag_help_lines(name))]) if names else ""


HELP_ARGUMENTS = {"--help": False, "-h": False, "-?": False, "--helpshort": False, "--helpfull": True}


def run(main, help_groups: HelpGroups | None = None, doc: str | None = None) -> None:
    """absl's app.run, after inlining --flagfile arguments (see `expand_flagfiles`). `--help` (or -h,
    --helpshort) prints `doc` (the front end's docstring; default the __main__ module's) and `help_groups` (default:
    the flags defined in `main`'s module), `--helpfull` also names absl's own flags; both exit 0."""
    helps = [HELP_ARGUMENTS[argument] for argument in sys.argv[1:] if argument in HELP_ARGUMENTS]
    if helps:
        print((doc if doc is not None else sys.modules["__main__"].__doc__ or "").strip())
        print(help_groups.text(full=any(helps)) if help_groups is not None else module_flags_text(main.__module__))
        sys.exit(0)
    refuse_non_finite_floats()
    if doc is not None:  # absl's --help prints the __main__ module's docstring: a shim's one line, or a console
        sys.modules["__main__"].__doc__ = doc  # script's nothing. The front end's own docstring says how to use it.
    try:
        argv = expand_flagfiles(sys.argv)
    except flags.Error as error:
        print(f"FATAL Flags parsing error: {error}", file=sys.stderr)
        sys.exit(1)
    app.run(main, argv=argv)


_FINITE_CHECKED: set[str] = set()


def refuse_non_finite_floats() -> None:
    """absl's float parser takes `nan` and `inf`, which pass every bound check (NaN compares false): no tfregimes
    float flag means either, so each is refused by name at parse time (the training flags' own rules do it for
    theirs, `tfregimes.training.run_flag_rules`)."""
    for module, defined in flags.FLAGS.flags_by_module_dict().items():
        if not module.startswith(("tfregimes", "scripts")) or module == "tfregimes.training.run_flags":
            continue
        for flag in defined:
            if isinstance(flag.parser, flags.FloatParser) and flag.name not in _FINITE_CHECKED:
                _FINITE_CHECKED.add(flag.name)
                flags.register_validator(flag.name, lambda value: value is None or math.isfinite(value),
                                         message="must be a finite number (not nan or inf)")


def expand_flagfiles(argv: list[str]) -> list[str]:
    """Inlines every --flagfile=PATH argument. A flagfile named inside a flagfile is found relative to the file
    that names it (absl would look in the working directory), so flags/ works from any directory. The order of
    the flags is kept, so later flags still override earlier ones."""
    expanded = []
    arguments = iter(argv)
    for argument in arguments:
        name, equals, value = argument.partition("=")
        if name in ("--flagfile", "-flagfile"):
            if not equals:  # The space form, `--flagfile PATH`, as absl accepts it.
                value = next(arguments, None)
                if value is None:
                    raise flags.Error("--flagfile needs a path: --flagfile=PATH")
            expanded.extend(_read_flagfile(value, including_dir=None, depth=0))
        else:
            expanded.append(argument)
    return expanded


def _read_flagfile(path: str, including_dir: str | None, depth: int) -> list[str]:
    if depth > 20:
        raise flags.Error(f"--flagfile={path}: nested more than 20 deep; does a flagfile include itself?")
    if including_dir is not None and not os.path.isabs(path):
        path = os.path.join(including_dir, path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except OSError as error:
        raise flags.Error(f"--flagfile={path}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise flags.Error(f"--flagfile={path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                          f"{error.start}); save it as UTF-8") from None
    arguments = []
    for line in lines:
        if line.startswith("--flagfile="):
            arguments.extend(_read_flagfile(line.split("=", 1)[1], os.path.dirname(path), depth + 1))
        elif line and not line.startswith("#"):
            arguments.append(line)
    return arguments
