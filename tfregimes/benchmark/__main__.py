"""`python -m tfregimes.benchmark`: the documented entry point; the front end is `tfregimes.cli.benchmark`."""

from tfregimes.cli.benchmark import entry_point

if __name__ == "__main__":
    entry_point()
