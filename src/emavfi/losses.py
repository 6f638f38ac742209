"""Training losses for frame interpolation, each with its formula.

Notation: ``P`` is a predicted frame, ``G`` its ground truth, both ``(N, 3, H, W)`` RGB in [0, 1];
``rho(x) = sqrt(x^2 + eps^2)`` is the Charbonnier penalty; ``mean`` averages over all elements.
``TrainingLoss`` combines the terms with the weights of ``LossConfig`` (the training config's loss
keys); a term whose weight is 0 is not computed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emavfi.config import bounded
from emavfi.errors import TORCH_LOAD_ERRORS, EmavfiError
from emavfi.models.contract import InterpolationOutput, resize_flow

logger = logging.getLogger(__name__)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's own VGG19 weight file name (looked for in the torch hub cache, never downloaded)
_VGG19_FILE = "vgg19-dcbb9e9d.pth"


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """L_char = mean( sqrt((P - G)^2 + eps^2) ): a smooth L1, the reconstruction term."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def gaussian_kernel(
    sigma: float, channels: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """A normalised ``(channels, 1, k, k)`` Gaussian kernel, k = 2*ceil(2*sigma)+1."""
    radius = max(1, int(2 * sigma + 0.999))
    coords = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    kernel_1d = torch.exp(-(coords**2) / (2 * sigma * sigma))
    kernel_2d = torch.outer(kernel_1d, kernel_1d)
    kernel_2d = kernel_2d / kernel_2d.sum()
    return kernel_2d.to(dtype).expand(channels, 1, -1, -1).contiguous()


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Blur each channel of ``(N, C, H, W)`` with a Gaussian of std ``sigma`` (edge padding)."""
    kernel = gaussian_kernel(sigma, image.shape[1], image.device, image.dtype)
    pad = kernel.shape[-1] // 2
    padded = F.pad(image, (pad, pad, pad, pad), mode="replicate")
    return F.conv2d(padded, kernel, groups=image.shape[1])


def rgb_to_ycbcr(image: Tensor) -> Tensor:
    """BT.601 full-range YCbCr of ``(N, 3, H, W)`` RGB in [0, 1] (Cb, Cr centred on 0.5)."""
    r, g, b = image.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 0.5 + (b - y) * 0.564
    cr = 0.5 + (r - y) * 0.713
    return torch.stack((y, cb, cr), dim=1)


def color_loss(pred: Tensor, target: Tensor, sigma: float = 2.0) -> Tensor:
    """L_color = mean | B_s(YCbCr(P)) - B_s(YCbCr(G)) |, B_s a Gaussian blur with std ``sigma``.

    The blur removes texture and edges (the other terms handle those), so this term measures
    low-frequency shifts of brightness and hue: the colour casts a warp-and-blend model makes.
    """
    return (
        (gaussian_blur(rgb_to_ycbcr(pred), sigma) - gaussian_blur(rgb_to_ycbcr(target), sigma))
        .abs()
        .mean()
    )


def gradient_loss(pred: Tensor, target: Tensor, order: int = 1) -> Tensor:
    """L_grad = mean|D_x^n P - D_x^n G| + mean|D_y^n P - D_y^n G|, D^n the n-th finite difference.

    ``order`` n = 1 compares edges (first differences), n = 2 curvature, and so on.
    """
    if order < 1:
        raise ValueError("gradient order must be >= 1")
    dx = torch.diff(pred, n=order, dim=-1) - torch.diff(target, n=order, dim=-1)
    dy = torch.diff(pred, n=order, dim=-2) - torch.diff(target, n=order, dim=-2)
    return dx.abs().mean() + dy.abs().mean()


def temporal_loss(preds: Tensor, targets: Tensor, timesteps: Tensor, alpha: float = 1.0) -> Tensor:
    """Temporal consistency across the K >= 2 targets of one window.

    ``preds``, ``targets``: ``(B, K, 3, H, W)``; ``timesteps``: ``(B, K)``. With the targets
    sorted by time, the predicted temporal differences ``dP_k = P_{k+1} - P_k`` must match the true
    ones ``dG_k = G_{k+1} - G_k`` (flicker and jumps between neighbouring outputs are penalised
    even when each frame alone is close):

        L_temp = sum_k w_k * mean rho(dP_k - dG_k),   w_k = gap_k^(-alpha) / sum_j gap_j^(-alpha)

    where ``gap_k = t_{k+1} - t_k``: ``alpha`` (``temporal_alpha``) makes pairs that are closer in
    time count more (alpha = 0: all pairs equal; evenly spaced targets: equal for any alpha).
    It is 0 when K == 1.
    """
    if preds.shape[1] < 2:
        return preds.new_zeros(())
    order = timesteps.argsort(dim=1)
    index = order[:, :, None, None, None].expand_as(preds)
    preds, targets = preds.gather(1, index), targets.gather(1, index)
    sorted_t = timesteps.gather(1, order)
    gaps = (sorted_t[:, 1:] - sorted_t[:, :-1]).clamp_min(1e-3)
    weights = gaps.pow(-alpha)
    weights = weights / weights.sum(dim=1, keepdim=True)
    diff = (preds[:, 1:] - preds[:, :-1]) - (targets[:, 1:] - targets[:, :-1])
    per_pair = torch.sqrt(diff**2 + 1e-6).mean(dim=(2, 3, 4))
    return (weights * per_pair).sum(dim=1).mean()


def laplacian_pyramid_loss(pred: Tensor, target: Tensor, levels: int = 5) -> Tensor:
    """L_lap = sum_l 2^l * mean |L_l(P) - L_l(G)| (EMA-VFI's published recipe, after RIFE).

    ``L_l`` is level l of a Laplacian pyramid (Gaussian 5x5 blur, 2x down/up sampling); finer
    levels keep edges, coarser ones carry low frequencies. Levels stop at 1 pixel.
    """
    total = pred.new_zeros(())
    current_p, current_g = pred, target
    for level in range(levels):
        if min(current_p.shape[-2:]) < 2:
            break
        down_p, down_g = _pyramid_down(current_p), _pyramid_down(current_g)
        band_p = current_p - _pyramid_up(down_p, current_p.shape[-2:])
        band_g = current_g - _pyramid_up(down_g, current_g.shape[-2:])
        total = total + (2**level) * (band_p - band_g).abs().mean()
        current_p, current_g = down_p, down_g
    return total


def _pyramid_down(image: Tensor) -> Tensor:
    return F.avg_pool2d(gaussian_blur(image, 1.0), 2, ceil_mode=True)


def _pyramid_up(image: Tensor, size: torch.Size) -> Tensor:
    return gaussian_blur(F.interpolate(image, size=tuple(size), mode="nearest"), 1.0)


def flow_distillation_loss(
    flow_stages: list[Tensor],
    target_flow: Tensor,
    weight: Tensor,
    gamma: float = 0.8,
    eps: float = 0.01,
) -> Tensor:
    """Supervise the flow estimates with target flows where they are reliable.

    ``flow_stages``: list of ``(N, 4, h_s, w_s)`` flow estimates in pixels of their own
    resolution, coarse to fine (the last is the final flow); ``target_flow``: ``(N, 4, H, W)``
    (ground truth or teacher); ``weight``: ``(N, 1, H, W)`` confidence in [0, 1]. Each stage is
    compared with the target resized (and its vectors rescaled) to the stage's size:

        L_flow = sum_s gamma^(S-1-s) * sum(w * (rho(F_s01 - T_01) + rho(F_s23 - T_23))) / sum(w)

    where ``rho`` is the Charbonnier norm of the 2-vector difference (a robust end-point error).
    """
    total = target_flow.new_zeros(())
    num_stages = len(flow_stages)
    for s, stage in enumerate(flow_stages):
        target_s, weight_s = resize_flow(target_flow, stage.shape[-2:]), weight
        if weight.shape[-2:] != stage.shape[-2:]:
            weight_s = F.interpolate(
                weight, size=stage.shape[-2:], mode="bilinear", align_corners=False
            )
        diff = (stage.float() - target_s).view(stage.shape[0], 2, 2, *stage.shape[-2:])
        epe = torch.sqrt((diff**2).sum(dim=2) + eps * eps).sum(dim=1, keepdim=True)
        total = total + gamma ** (num_stages - 1 - s) * (
            weight_s * epe
        ).sum() / weight_s.sum().clamp_min(1.0)
    return total


class VGGPerceptualLoss(nn.Module):
    """L_vgg = sum_j mean |phi_j(P) - phi_j(G)|, phi_j VGG19 features relu1_2, relu2_2, relu3_4,
    relu4_4 of ImageNet-normalised input (torchvision's VGG19, frozen).

    ImageNet weights are never downloaded: they come from ``weights_path`` (a torchvision
    ``vgg19`` state dict, ``.pth`` read with ``weights_only=True`` or ``.safetensors``) or from
    torchvision's file in the torch hub cache. ``VGGPerceptualLoss.create`` returns None (and logs
    once) when neither exists, so the caller drops the term.
    """

    _LAYER_ENDS = (4, 9, 18, 27)  # exclusive ends of features[...] after relu1_2 .. relu4_4

    def __init__(self, state_dict: dict[str, Tensor]) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        features = make_layers(cfgs["E"])[: self._LAYER_ENDS[-1]]  # VGG19's conv part, to relu4_4
        prefix = "features."
        wanted = {
            k: v
            for k, v in state_dict.items()
            if k.startswith(prefix) and int(k[len(prefix) :].split(".")[0]) < self._LAYER_ENDS[-1]
        }
        try:
            features.load_state_dict({k[len(prefix) :]: v for k, v in wanted.items()})
        except RuntimeError:
            raise EmavfiError(
                "the VGG weights file does not hold torchvision vgg19 features"
            ) from None
        self.features = features.eval().requires_grad_(False)
        self.register_buffer(
            "mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def create(cls, weights_path: str | None) -> VGGPerceptualLoss | None:
        """The loss with ImageNet weights, or None (logged once) when no weights file exists."""
        path = Path(weights_path).expanduser() if weights_path else _hub_vgg19_file()
        if path is None or not path.is_file():
            where = (
                f"{weights_path} does not exist"
                if weights_path
                else "no VGG19 ImageNet weights found"
            )
            logger.warning(
                "VGG perceptual loss disabled: %s (set vgg_weights_path; nothing is downloaded)",
                where,
            )
            return None
        return cls(_read_state_dict(path))

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        return super().train(False)  # frozen feature extractor: always in eval mode

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        x = (torch.cat((pred, target)) - self.mean) / self.std
        total, start = x.new_zeros(()), 0
        for end in self._LAYER_ENDS:
            x = self.features[start:end](x)
            feat_p, feat_g = x.chunk(2)
            total = total + (feat_p - feat_g).abs().mean()
            start = end
        return total


def _hub_vgg19_file() -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / _VGG19_FILE
    return path if path.is_file() else None


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (*TORCH_LOAD_ERRORS, SafetensorError) as exc:  # the user's file to fix
        raise EmavfiError(f"cannot read VGG weights {path}: {exc.__class__.__name__}") from None
    if not isinstance(state, dict) or "features.0.weight" not in state:
        raise EmavfiError(f"{path} is not a torchvision vgg19 state dict")
    return state


@dataclass
class LossConfig:
    """The training config's loss keys: each term's weight (0 switches it off) and parameters.

    ``TrainConfig`` inherits these fields, so a new term is a field here, its line in
    ``config/train_config.yaml`` and its branch in ``TrainingLoss.forward``.
    """

    charbonnier_weight: float = bounded(0.6, ge=0.0)
    vgg_weight: float = bounded(0.05, ge=0.0)
    color_weight: float = bounded(0.25, ge=0.0)
    gradient_weight: float = bounded(0.05, ge=0.0)
    temporal_weight: float = bounded(0.05, ge=0.0)
    gradient_order: int = bounded(1, ge=1, le=4)
    temporal_alpha: float = bounded(1.0, ge=0.0)
    laplacian_weight: float = bounded(0.5, ge=0.0)
    flow_weight: float = bounded(0.01, ge=0.0)
    mask_weight: float = bounded(0.0, ge=0.0)
    vgg_weights_path: str | None = None


class TrainingLoss(nn.Module):
    """The weighted sum of the terms above for one batch of model outputs.

    L = w_char L_char(P, G) + w_vgg L_vgg(P, G) + w_color L_color(P, G) + w_grad L_grad(P, G)
        + w_temp L_temp + w_lap (L_lap(P, G) + 0.5 L_lap(M, G)) + w_flow L_flow + w_mask L_mask

    with ``M`` the model's intermediate merged frames (each flow stage's blend, before
    refinement; summed over ``merged_stages`` as the published recipe does) and L_flow supervised by
    the sample's ``flow`` weighted by ``flow_valid`` (ground truth or a teacher); L_mask, the
    fusion weight against a teacher's (``mask_target``), weighted by ``mask_valid``.
    """

    def __init__(self, config: LossConfig, vgg: VGGPerceptualLoss | None = None) -> None:
        super().__init__()
        self.config = config
        self.vgg = vgg if config.vgg_weight > 0 else None

    @classmethod
    def create(cls, config: LossConfig) -> TrainingLoss:
        """The loss of ``config``, with the VGG term's weights from ``vgg_weights_path``."""
        vgg_term = config.vgg_weight > 0
        return cls(config, VGGPerceptualLoss.create(config.vgg_weights_path) if vgg_term else None)

    def forward(
        self, output: InterpolationOutput, batch: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``output``: the model's ``InterpolationOutput`` for ``B*K`` frames (targets flattened
        batch-major); ``batch``: ``targets (B, K, 3, H, W)``, ``timesteps (B, K)``, ``flow
        (B, K, 4, H, W)``, ``flow_valid (B, K, 1, H, W)``. Returns the total and each term (detached
        tensors, so logging them costs no sync until read)."""
        c = self.config
        targets = batch["targets"]
        batch_size, num_targets = targets.shape[:2]
        gt = targets.flatten(0, 1)
        pred = output.pred.float()
        terms: dict[str, Tensor] = {}
        if c.charbonnier_weight > 0:
            terms["charbonnier"] = c.charbonnier_weight * charbonnier(pred, gt)
        if self.vgg is not None:
            terms["vgg"] = c.vgg_weight * self.vgg(pred, gt)
        if c.color_weight > 0:
            terms["color"] = c.color_weight * color_loss(pred, gt)
        if c.gradient_weight > 0:
            terms["gradient"] = c.gradient_weight * gradient_loss(pred, gt, c.gradient_order)
        if c.temporal_weight > 0 and num_targets > 1:
            preds = pred.view(batch_size, num_targets, *pred.shape[1:])
            terms["temporal"] = c.temporal_weight * temporal_loss(
                preds, targets, batch["timesteps"], c.temporal_alpha
            )
        if c.laplacian_weight > 0:
            lap = laplacian_pyramid_loss(pred, gt)
            for merged in output.merged_stages:
                lap = lap + 0.5 * laplacian_pyramid_loss(merged.float(), gt)
            terms["laplacian"] = c.laplacian_weight * lap
        stages = output.flow_stages
        if c.flow_weight > 0 and stages and "flow" in batch:
            flow_valid = batch["flow_valid"].flatten(0, 1)
            terms["flow"] = c.flow_weight * flow_distillation_loss(
                stages, batch["flow"].flatten(0, 1), flow_valid
            )
        if c.mask_weight > 0 and "mask_target" in batch:
            valid = batch["mask_valid"].flatten(0, 1)
            error = (output.mask.float() - batch["mask_target"].flatten(0, 1)).abs() * valid
            terms["mask"] = c.mask_weight * error.sum() / valid.sum().clamp_min(1.0)
        if not terms:
            raise EmavfiError("every loss weight is 0: nothing to train")
        total = torch.stack(list(terms.values())).sum()
        return total, {name: value.detach() for name, value in terms.items()}
