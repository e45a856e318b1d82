"""`python -m tfregimes.benchmark`: the documented entry point; the front end is `tfregimes.cli.benchmark`."""

from tfregimes.cli.benchmark import cli_common, main

if __name__ == "__main__":
    cli_common.run(main)
