"""`python -m tfregimes.evaluate`: the documented entry point; the front end is `tfregimes.cli.evaluate`."""

from tfregimes.cli.evaluate import entry_point

if __name__ == "__main__":
    entry_point()
