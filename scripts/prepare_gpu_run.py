"""Make ``runs/gpu/``: what config/ema_cpu_v2_gpu.yaml starts from and distils from.

    python scripts/prepare_gpu_run.py --rife PATH/flownet.pkl [--init ema-cpu] [--out runs/gpu]

- ``init.safetensors``: the student (ema-cpu with ``flow_init: none``) holding the weights of
  ``--init`` (a registry name or checkpoint; the packaged ema-cpu by default) wherever the names
  and shapes agree: everything but the 1/16-scale flow head, which the DIS warm start replaced.
- ``rife425.safetensors``: the Practical-RIFE v4.25 teacher in our format, float16 (11 MB, so it
  travels to a GPU machine with the training data).
Both are float16 files (half the size; loading restores float32).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emavfi.models.checkpoints import load_model, save_checkpoint
from emavfi.models.registry import create_model

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rife", type=Path, required=True, help="Practical-RIFE v4.25 flownet.pkl")
    parser.add_argument("--init", default="ema-cpu", help="weights to start the student from")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    teacher = load_model(args.rife)
    save_checkpoint(
        teacher,
        args.out / "rife425.safetensors",
        half=True,
        training={"source": f"{args.rife.name}: Practical-RIFE v4.25 (MIT, hzwer)"},
    )

    source = load_model(args.init).state_dict()
    student = create_model("ema-cpu", flow_init="none")
    target = student.state_dict()
    shared = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    student.load_state_dict(shared, strict=False)
    fresh = sorted(set(target) - set(shared))
    save_checkpoint(
        student,
        args.out / "init.safetensors",
        half=True,
        training={"init": args.init, "fresh": fresh},
    )
    print(
        f"init.safetensors: {len(shared)} tensors from {args.init}, {len(fresh)} fresh; rife425.safetensors"
    )


if __name__ == "__main__":
    main()
