"""Command-line front ends: the only modules that read absl FLAGS."""
