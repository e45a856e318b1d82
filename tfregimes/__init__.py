"""tfregimes: train image classifiers under different training regimes and measure why they generalize."""

__version__ = "0.1.0"
