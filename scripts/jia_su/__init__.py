"""Seed 004 (Jia & Su 2020) reproduction: the shared setting, the three scenarios, the regularizer."""
