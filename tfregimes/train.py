"""`python -m tfregimes.train`: the documented entry point; the front end is `tfregimes.cli.train`."""

from tfregimes.cli.train import entry_point

if __name__ == "__main__":
    entry_point()
