"""The parts of scripts/reproduce_leclerc_madry.py (seed 001 at CPU scale), one module each."""
