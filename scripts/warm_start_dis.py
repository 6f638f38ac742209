"""Turn an ``ema-cpu`` checkpoint with its own first flow head into the DIS warm-start variant.

    python scripts/warm_start_dis.py runs/ema_cpu/best.safetensors runs/ema_cpu/init_dis.safetensors

``flow_init="dis"`` replaces the 1/16-scale flow head by the classical engine's DIS flow (see
docs/network.md), so that head's weights are dropped; every other weight is kept. The result is
the ``init_weights`` of config/ema_cpu_finetune.yaml.
"""

from __future__ import annotations

import argparse

from emavfi.models.checkpoints import load_checkpoint, save_checkpoint
from emavfi.models.registry import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="our .safetensors checkpoint of ema-cpu with flow_init none")
    parser.add_argument("target", help="where to write the flow_init=dis checkpoint")
    args = parser.parse_args()
    state, metadata = load_checkpoint(args.source)
    arch = {**metadata["arch"], "flow_init": "dis"}
    model = create_model(metadata["spec"], **arch)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("block.0.")})
    training = {"warm_start_from": metadata.get("training", {}), "dropped": "block.0 (1/16 head)"}
    save_checkpoint(model, args.target, training=training)
    print(args.target)


if __name__ == "__main__":
    main()
