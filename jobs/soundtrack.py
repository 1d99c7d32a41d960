"""Ray job entrypoint: ``python -m jobs.soundtrack INPUT OUTPUT [options]``.

Runs on a local Ray by default, or on the cluster named by RAY_ADDRESS (which
``ray job submit`` sets). Options: ``python -m jobs.soundtrack --help``.
"""

import sys

from cotvtm.cli import main

if __name__ == "__main__":
    sys.exit(main(["soundtrack", *sys.argv[1:]], console=True))
