"""Every reproduction page's figure is drawn under the report's style (tfregimes.report.style), through
scripts/reproduction.py's helpers or the style module itself: no script sets up matplotlib on its own."""

import re
import sys

from helpers import REPO

from tfregimes.report import style

sys.path.insert(0, str(REPO / "scripts"))
import reproduction  # noqa: E402

SETS_UP_PYPLOT = re.compile(r"^\s*(import matplotlib(\.pyplot)?\b(?!\.)|from matplotlib import pyplot)"
                            r"|matplotlib\.use\(", re.M)


def test_no_script_but_the_shared_helpers_sets_up_pyplot():
    # Tickers, colours and the like may be imported; figures are made and saved only by the shared helpers.
    own = [str(path.relative_to(REPO)) for path in sorted((REPO / "scripts").rglob("*.py"))
           if path.name != "reproduction.py" and SETS_UP_PYPLOT.search(path.read_text())]
    assert own == []


def test_a_page_figure_takes_the_report_style_and_is_written_opaque(tmp_path):
    fig, ax = reproduction.new_figure(1, 2, figsize=(4, 2))
    assert ax[0].xaxis._major_tick_kw["gridOn"] == style.RC["axes.grid"]
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)
    ax[0].plot([0, 1], [1, 0])
    path = tmp_path / "f.png"
    reproduction.save_figure(fig, path)
    from matplotlib import image
    pixels = image.imread(path)
    assert pixels.shape[-1] in (3, 4) and (pixels.shape[-1] == 3 or pixels[..., 3].min() == 1.0)
