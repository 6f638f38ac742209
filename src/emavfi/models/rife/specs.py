"""Registry entries for the RIFE v4 family."""

from __future__ import annotations

from emavfi.models.registry import ModelSpec, register_model
from emavfi.models.rife.net import IFNet

register_model(
    ModelSpec(
        name="rife-4.25",
        builder=IFNet,
        arch={"widths": [192, 128, 96, 64, 32], "scale": 1.0},
        pad_multiple=64,
        channel_order="BGR",
        description="Practical-RIFE v4.25 (flownet.pkl, BGR); load the checkpoint by path",
    )
)
