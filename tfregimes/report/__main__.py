"""`python -m tfregimes.report`: see tfregimes/cli/report.py."""

from tfregimes.cli.report import entry_point

if __name__ == "__main__":
    entry_point()
