"""`python -m tfregimes.results`: see tfregimes/cli/results.py."""

from tfregimes.cli.results import entry_point

if __name__ == "__main__":
    entry_point()
