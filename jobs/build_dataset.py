"""Ray job entrypoint: ``python -m jobs.build_dataset [MANIFEST ...] --out DIR [options]``.

Labels captions (from manifests and/or ``--scenes N``) with the chain-of-thought teacher:
an OpenAI-compatible endpoint with ``--teacher-url``/``--teacher-model``, the offline rules
without. Runs on a local Ray, or on the cluster named by RAY_ADDRESS (``ray job submit`` sets
it). Options: ``python -m jobs.build_dataset --help``.
"""

import sys

from cotvtm.cli import main

if __name__ == "__main__":
    sys.exit(main(["label", *sys.argv[1:]], console=True))
