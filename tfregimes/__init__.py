"""tfregimes: train image classifiers under different training regimes and measure why they generalize."""

__version__ = "0.1.0"

from tfregimes.base.quiet_start import import_tensorflow as _import_tensorflow

_import_tensorflow()  # Without the C++ start-up lines (a cuInit error on every CPU start); see base/quiet_start.py.
