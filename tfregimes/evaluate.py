"""`python -m tfregimes.evaluate`: the documented entry point; the front end is `tfregimes.cli.evaluate`."""

from tfregimes.cli.evaluate import cli_common, main

if __name__ == "__main__":
    cli_common.run(main)
