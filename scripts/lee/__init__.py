"""The parts of scripts/reproduce_lee.py (seed 000, Lee et al. appendix, at CPU scale), one module each."""
