"""`python -m tfregimes.train`: the documented entry point; the front end is `tfregimes.cli.train`."""

from tfregimes.cli.train import cli_common, main

if __name__ == "__main__":
    cli_common.run(main)
