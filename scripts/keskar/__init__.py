"""Seed 003 (Keskar et al. 2017) at CPU scale: the parts of scripts/reproduce_keskar.py."""
