"""Ray job entrypoint: ``python -m jobs.evaluate TESTSET OUT [options]`` (options: ``--help``).

Generates music with every method for a paired test set and writes the paper's table
(FD, FAD, KL, IB, EMS, P@10, mapping and MusicGen time and memory) with its plots to OUT.
Runs in one process so that each method is timed with the device to itself.
"""

import sys

from cotvtm.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]], console=True))
