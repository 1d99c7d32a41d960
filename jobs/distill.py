"""Ray job entrypoint: ``python -m jobs.distill ...`` (options: ``--help``)."""

import sys

from cotvtm.cli import main

if __name__ == "__main__":
    sys.exit(main(["distill", *sys.argv[1:]], console=True))
