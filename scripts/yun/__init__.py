"""The parts of scripts/reproduce_yun.py (seed 002 at CPU scale): the setting and its sweeps, the tables, the
angular update, the transfer of section 6."""
