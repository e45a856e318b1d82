"""tfregimes: train image classifiers under different training regimes and measure why they generalize."""

__version__ = "0.1.0"

from tfregimes.base.quiet_start import filter_tensorflow_start as _filter_tensorflow_start

# Imports no TensorFlow: tools that only read results start without it. Whatever first imports it (training,
# evaluation, a notebook's `import keras`) does so without the C++ start-up lines (a cuInit error on every CPU start).
_filter_tensorflow_start()
