"""LPIPS (Zhang et al., CVPR 2018, "The Unreasonable Effectiveness of Deep Features"), offline.

LPIPS compares unit-normalised deep features of two images through learned 1x1 "linear" layers.
Both parts are weights we cannot ship or download here, so LPIPS is optional: it is computed only
when the user gives a weights file (``--lpips-weights PATH``), never fetched from the internet.

The file (``.pth`` read with ``torch.load(weights_only=True)``, or ``.safetensors``) holds the
linear layers as the ``lpips`` package saves them (``lin0.model.1.weight`` ... or ``lin0.weight``,
each ``(1, C, 1, 1)``) and, optionally, the torchvision backbone under ``net.`` (e.g.
``net.features.0.weight``). Without backbone keys the torchvision ImageNet weights are taken from
the local torch hub cache if they are already there (``alexnet-owt-7be5be79.pth`` /
``vgg16-397923af.pth``); if not, LPIPS says why and reports "n/a".
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emavfi.errors import TORCH_LOAD_ERRORS, EmavfiError
from emavfi.imageio import frames_to_tensor

log = logging.getLogger(__name__)

# Where each backbone's ReLU outputs are tapped (torchvision ``features`` indices) and their widths.
_TAPS = {
    "alex": ((0, 2, 5, 8, 10, 12), (64, 192, 384, 256, 256), "alexnet-owt-7be5be79.pth"),
    "vgg": ((0, 4, 9, 16, 23, 30), (64, 128, 256, 512, 512), "vgg16-397923af.pth"),
}
# Input normalisation of LPIPS (its ScalingLayer), applied to images in [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    """LPIPS distance. ``forward(img0, img1)``: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B,)``."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in _TAPS:
            raise EmavfiError(f"unknown LPIPS network {net!r}; use one of {sorted(_TAPS)}")
        from torchvision import models

        self.net_name = net
        backbone = models.alexnet(weights=None) if net == "alex" else models.vgg16(weights=None)
        self.features = backbone.features  # the classifier is not part of LPIPS
        taps, widths, _ = _TAPS[net]
        self.taps = taps
        self.lins = nn.ModuleList(nn.Conv2d(width, 1, 1, bias=False) for width in widths)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def _features(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = ((image * 2.0 - 1.0) - self.shift) / self.scale
        feats = []
        for start, stop in zip(self.taps[:-1], self.taps[1:]):
            x = self.features[start:stop](x)
            feats.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return feats

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        distance = img0.new_zeros(img0.shape[0])
        for lin, f0, f1 in zip(self.lins, self._features(img0), self._features(img1)):
            distance = distance + lin((f0 - f1) ** 2).mean(dim=(1, 2, 3))
        return distance


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError

    if not path.is_file():
        raise EmavfiError(f"LPIPS weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (*TORCH_LOAD_ERRORS, SafetensorError) as exc:  # the user's file to fix
        raise EmavfiError(f"cannot read LPIPS weights {path}: {type(exc).__name__}") from exc
    if not isinstance(state, dict):
        raise EmavfiError(f"LPIPS weights {path} are not a state dict")
    return state


def _cached_backbone(net: str) -> Path | None:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / _TAPS[net][2]
    return cached if cached.is_file() else None


def load_lpips(weights: str | Path, net: str = "alex", device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS with linear layers (and maybe backbone) from ``weights``; raises EmavfiError if incomplete."""
    model = LPIPS(net)
    state = _read_state(Path(weights))
    lin_state = {}
    for key, value in state.items():
        match = re.fullmatch(r"lin(\d)(?:\.model\.1)?\.weight", key)
        if match:
            lin_state[f"{match.group(1)}.weight"] = value
    if len(lin_state) != len(model.lins):
        raise EmavfiError(
            f"{weights} holds {len(lin_state)} of the {len(model.lins)} LPIPS-{net} linear layers"
        )
    try:
        model.lins.load_state_dict(lin_state)
        backbone = {k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")}
        if not backbone:
            cached = _cached_backbone(net)
            if cached is None:
                raise EmavfiError(
                    f"LPIPS-{net} needs the torchvision {net} backbone: put net.* keys in {weights} "
                    f"or {_TAPS[net][2]} in {Path(torch.hub.get_dir()) / 'checkpoints'}"
                )
            backbone = torch.load(str(cached), map_location="cpu", weights_only=True)
        features = {
            k[len("features.") :]: v for k, v in backbone.items() if k.startswith("features.")
        }
        missing = set(model.features.state_dict()) - set(features)
        if missing:
            raise EmavfiError(f"LPIPS-{net} backbone weights are missing {sorted(missing)[:3]}")
        model.features.load_state_dict(features, strict=False)
    except RuntimeError as exc:  # shape mismatch: wrong network for this file
        raise EmavfiError(
            f"{weights} does not fit LPIPS-{net}: {str(exc).splitlines()[0]}"
        ) from exc
    return model.to(device)


def lpips_distance(model: LPIPS, pred: np.ndarray, gt: np.ndarray) -> float:
    """LPIPS between two ``HxWx3`` uint8 RGB frames (the prediction already rounded to 8 bit)."""
    device = model.shift.device
    pair = [frames_to_tensor(frame)[None] for frame in (pred, gt)]
    with torch.inference_mode():
        return float(model(pair[0].to(device), pair[1].to(device))[0])
