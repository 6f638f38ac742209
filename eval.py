"""The original description's evaluation entry point: ``python eval.py [emavfi eval options]``.

With no options it evaluates the best model of a training run (``best_ema_vfi.safetensors``, or
the default model if there is none) on the validation folder named by ``val_data_dir`` in
``config/train_config.yaml``. Same options as ``emavfi eval``.
"""

import sys

from emavfi.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["eval", "--seed-defaults", *sys.argv[1:]]))
