"""Registry entries for EMA-VFI: the two published configurations and our own.

Imported by ``emavfi.models.registry`` on first use (registering is this module's purpose).
"""

from __future__ import annotations

from emavfi.models.ema_vfi.net import EMAVFI
from emavfi.models.registry import ModelSpec, register_model

PAD_MULTIPLE = 32  # five stride-2 stages in the refinement U-Net and the extractor


def _arch(width: int, depths: list[int], window_size: int = 7, flow_init: str = "none") -> dict:
    return {
        "width": width,
        "window_size": window_size,
        "depths": depths,
        "deform_fusion": False,
        "flow_init": flow_init,
    }


register_model(
    ModelSpec(
        name="ema-base",
        builder=EMAVFI,
        arch=_arch(32, [2, 2, 2, 4, 4]),
        published="ours.pkl",
        pad_multiple=PAD_MULTIPLE,
        channel_order="BGR",
        description="published EMA-VFI (ours.pkl, 65.7M params, BGR); load the .pkl by path",
    )
)
register_model(
    ModelSpec(
        name="ema-small",
        builder=EMAVFI,
        arch=_arch(16, [2, 2, 2, 2, 2]),
        published="ours_small.pkl",
        pad_multiple=PAD_MULTIPLE,
        channel_order="BGR",
        description="published EMA-VFI small (ours_small.pkl, 14.5M params, BGR); load by path",
    )
)
register_model(
    ModelSpec(
        name="ema-cpu",
        builder=EMAVFI,
        arch=_arch(8, [2, 2, 2, 2, 2], flow_init="dis"),
        weights="ema_cpu.safetensors",
        sha256="e620241e7fc7822fb8b0133cdc8651e316504cea35c609bdba9230dcfa115c8d",
        pad_multiple=PAD_MULTIPLE,
        channel_order="RGB",
        description="our CPU-sized EMA-VFI (F=8, RGB) refining DIS flow, packaged weights",
        # OpenVINO in bf16: Middlebury 34.21 dB, UCF101 34.72 dB, as in float32 (README)
        graph_bf16=True,
    )
)
register_model(
    ModelSpec(
        name="ema-tiny",
        builder=EMAVFI,
        arch=_arch(4, [1, 1, 1, 2, 2]),
        pad_multiple=PAD_MULTIPLE,
        channel_order="RGB",
        description="a minute EMA-VFI for tests (random weights)",
    )
)
