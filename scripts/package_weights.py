"""Package trained weights as the default model's file (float16 safetensors inside the package).

    python scripts/package_weights.py runs/ema_cpu_ft/best.safetensors

Writes ``src/emavfi/weights/<spec weights file>`` and prints the sha256 to put in the spec.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from emavfi.models.checkpoints import load_model, save_checkpoint

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "emavfi" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="our .safetensors checkpoint (e.g. a run's best model)")
    parser.add_argument("--note", default="", help="training summary text stored in the metadata")
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    training = dict(getattr(model, "checkpoint_metadata", {}).get("training", {}) or {})
    training.pop("config", None)  # the recipe lives in config/*.yaml; keep the file small
    if args.note:
        training["note"] = args.note
    target = WEIGHTS_DIR / model.spec.weights
    save_checkpoint(model, target, training=training, half=True)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(json.dumps({"file": str(target), "bytes": target.stat().st_size, "sha256": digest}))


if __name__ == "__main__":
    main()
