"""Registry entry for RIFE v4: Practical-RIFE v4.25, whose released weights users pass by path.

Imported by ``emavfi.models.registry`` on first use (registering is this module's purpose).
"""

from __future__ import annotations

from emavfi.models.registry import ModelSpec, register_model
from emavfi.models.rife.net import PAD_MULTIPLE, IFNet

register_model(
    ModelSpec(
        name="rife-4.25",
        builder=IFNet,
        arch={"widths": [192, 128, 96, 64, 32]},
        pad_multiple=PAD_MULTIPLE,
        channel_order="BGR",
        flow_scales=(1.0, 0.5, 0.25),
        published="flownet.pkl",
        description="Practical-RIFE v4.25 (hzwer, 5.7M params, BGR); pass its flownet.pkl by path",
    )
)
