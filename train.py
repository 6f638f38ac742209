"""The original description's training entry point: ``python train.py [emavfi train options]``.

With no options it trains with ``config/train_config.yaml``. Same options as ``emavfi train``
(``--config``, ``--set key=value``, ``--resume``).
"""

import sys

from emavfi.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]], prog="train.py"))
