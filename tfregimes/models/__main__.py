"""`python -m tfregimes.models`: the documented entry point; the front end is `tfregimes.cli.models`."""

from tfregimes.cli.models import entry_point

if __name__ == "__main__":
    entry_point()
