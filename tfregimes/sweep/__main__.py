"""python -m tfregimes.sweep: see tfregimes/cli/sweep.py."""

from tfregimes.cli.sweep import entry_point

if __name__ == "__main__":
    entry_point()
