"""tfregimes.base.progress: one plain line per step where the stream is not a terminal, a bar where it is, nothing
for progress=None."""

import io

from tfregimes.base.progress import Progress, task


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_one_plain_line_per_step():
    stream = io.StringIO()
    with Progress(stream).task("sharpness full_eps1e-3", 3, "iteration") as steps:
        for f in (0.12344, 0.5, 2.0):
            steps.step(f=f)
        steps.note("a note")
    assert stream.getvalue().splitlines() == [
        "sharpness full_eps1e-3: iteration 1/3, f=0.1234", "sharpness full_eps1e-3: iteration 2/3, f=0.5",
        "sharpness full_eps1e-3: iteration 3/3, f=2", "a note"]
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()


def test_a_terminal_gets_a_bar_and_none_gets_nothing(capsys):
    stream = Terminal()
    with Progress(stream).task("fisher", 2, "subset") as steps:
        steps.step(logdet=-3.5)
        steps.step(logdet=-3.25)
    assert "\r" in stream.getvalue() and "2/2" in stream.getvalue() and "fisher" in stream.getvalue()
    silent = task(None, "fisher", 2, "subset")
    silent.step(logdet=1.0)
    silent.note("x")
    silent.close()
    assert capsys.readouterr() == ("", "")


def test_the_default_stream_is_stderr_at_the_time_of_use(capsys):
    with Progress().task("interpolation", None, "point") as steps:
        steps.step(alpha=-1.0)
    assert capsys.readouterr().err == "interpolation: point 1, alpha=-1\n"
