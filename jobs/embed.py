"""Ray job entrypoint: ``python -m jobs.embed ...`` (options: ``--help``)."""

import sys

from cotvtm.cli import main

if __name__ == "__main__":
    sys.exit(main(["embed", *sys.argv[1:]], console=True))
