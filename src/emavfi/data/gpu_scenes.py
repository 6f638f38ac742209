"""Layered moving scenes rendered on the training device, with exact flow at any timestep.

The CPU scene sources (``synthetic.py``, ``scene_render.py``) feed the DataLoader workers and
were the bottleneck of the first GPU run (about 300 samples/s on 16 cores). This generator makes
whole batches with tensor operations on the device the model trains on (or on the CPU, where the
tests run it): a textured background and up to ``max_layers`` textured foreground shapes
(blobs and long thin "limbs"), each moving between time 0 and time 1 by

    P_u(c) = m + (1 + zoom * u) R(spin * u) (c - m) + velocity * u + u * D(c),   u = s - 1/2

with ``m`` the layer's centre, ``D`` a smooth random field (non-rigid deformation, zero for
rigid layers) and ``c`` the layer's canonical coordinates. Frames at s = 0, t, 1 are rendered by
inverting ``P_u`` (closed form for the affine part, fixed-point steps for ``D``), sampling
the texture and alpha at ``c`` and compositing back to front. The ground-truth flow at time t is
exact: for the front-most layer covering pixel x, ``P_0(c) - x`` and ``P_1(c) - x`` with
``c = P_t^{-1}(x)`` (channels as in the model contract: t -> img0, t -> img1). ``flow_valid``
is 0 on the soft edges of shapes, where two layers mix, and 1 elsewhere.

Displacements over the whole gap reach ``max_motion`` pixels (default 64: the large-motion regime
where the first default model tore limbs); a ``static_fraction`` of scenes moves by at most
``static_motion`` pixels, so that the model also learns to leave still content alone. With
``min_motion`` > 0 every moving layer travels at least that far (the evaluation suite of large
motions, `emavfi.data.sources.rendered`); ``timestep`` fixes t instead of drawing it. Both leave
the random draws as they are, so a generator with their defaults makes the same scenes as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from emavfi.errors import EmavfiError

TEXTURE_SIZE = 512
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class SceneOptions:
    """What the generated scenes look like (sizes and motions in pixels of the output crop)."""

    max_layers: int = 4
    max_motion: float = 64.0
    min_motion: float = 0.0  # least translation of a moving layer (background: 0.6 of it)
    static_fraction: float = 0.15
    static_motion: float = 2.0
    max_spin: float = 0.35  # radians over the whole gap (background: a fifth of it)
    max_zoom: float = 0.25
    max_deform: float = 10.0  # pixels of non-rigid displacement over the whole gap
    limb_fraction: float = 0.4  # foreground shapes that are long and thin
    noise: float = 0.01  # sensor noise standard deviation added to every frame
    timestep: float | None = None  # None: t uniform in [0.05, 0.95]

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_motion <= self.max_motion:
            raise EmavfiError(
                f"scene motion range must satisfy 0 <= min_motion <= max_motion, "
                f"got {self.min_motion} and {self.max_motion}"
            )
        if self.timestep is not None and not 0.0 < self.timestep < 1.0:
            raise EmavfiError(f"scene timestep must be in (0, 1), got {self.timestep}")


def load_textures(folder: str | Path, device: torch.device, limit: int | None = None) -> Tensor:
    """The images of ``folder`` as a ``(N, 3, 512, 512)`` uint8 RGB tensor on ``device``
    (centre square, resized); EmavfiError when there are none."""
    import cv2

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)[:limit]
    images = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < 32:
            continue
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = cv2.resize(
            image[top : top + side, left : left + side],
            (TEXTURE_SIZE, TEXTURE_SIZE),
            interpolation=cv2.INTER_AREA,
        )
        images.append(torch.from_numpy(np.ascontiguousarray(square[..., ::-1])).permute(2, 0, 1))
    if not images:
        raise EmavfiError(f"no texture images in {folder}")
    return torch.stack(images).to(device)


class SceneGenerator:
    """Batches of ``(img0, img1, target at t, exact flow)`` rendered on ``textures.device``.

    ``sample(batch, size)`` returns a dict in the training batch layout: ``img0``, ``img1``
    (B, 3, H, W), ``targets`` (B, 1, 3, H, W), ``timesteps`` (B, 1), ``flow`` (B, 1, 4, H, W),
    ``flow_valid`` (B, 1, 1, H, W); RGB in [0, 1], float32.
    """

    def __init__(
        self, textures: Tensor, options: SceneOptions = SceneOptions(), seed: int = 0
    ) -> None:
        self.textures = textures
        self.options = options
        self.device = textures.device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._banks: dict[int, Tensor] = {}

    def _bank(self, side: int) -> Tensor:
        """The textures area-resized to ``side`` pixels: sampled at 0.7-2x magnification, so
        that warping a rendered frame reproduces the next one without aliasing."""
        if side not in self._banks:
            resized = F.interpolate(self.textures.float(), size=(side, side), mode="area")
            self._banks[side] = resized.round().clamp(0, 255).to(torch.uint8)
        return self._banks[side]

    def _rand(self, *shape: int) -> Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device)

    def _randn(self, *shape: int) -> Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device)

    @torch.no_grad()
    def sample(self, batch: int, size: tuple[int, int]) -> dict[str, Tensor]:
        opts = self.options
        height, width = size
        layers = 1 + opts.max_layers
        # Per scene: how far things move (static scenes), the timestep.
        static = self._rand(batch) < opts.static_fraction
        span = opts.max_motion - opts.min_motion
        reach = torch.where(
            static,
            torch.full_like(static, opts.static_motion, dtype=torch.float32),
            opts.min_motion + span * self._rand(batch).sqrt(),
        )
        least = torch.where(static, 0.0, opts.min_motion)  # (B,) a moving layer's least travel
        timestep = 0.05 + 0.9 * self._rand(batch)
        if opts.timestep is not None:
            timestep = torch.full_like(timestep, opts.timestep)
        # Per layer (B, L): motion parameters; layer 0 is the background (camera).
        present = self._rand(batch, layers) < 0.75
        present[:, 0] = True
        angle = 2 * math.pi * self._rand(batch, layers)
        speed = least[:, None] + (reach - least)[:, None] * self._rand(batch, layers)
        speed[:, 0] *= 0.6
        velocity = torch.stack(
            (speed * torch.cos(angle), speed * torch.sin(angle)), -1
        )  # (B, L, 2)
        limit = (reach / max(opts.max_motion, 1e-6))[:, None]
        spin = opts.max_spin * (2 * self._rand(batch, layers) - 1) * limit
        spin[:, 0] *= 0.2
        zoom = opts.max_zoom * (2 * self._rand(batch, layers) - 1) * limit
        zoom[:, 0] *= 0.5
        centre = torch.stack(
            (width * self._rand(batch, layers), height * self._rand(batch, layers)), -1
        )
        centre[:, 0] = torch.tensor([width / 2, height / 2], device=self.device)
        deform_amp = (
            opts.max_deform * self._rand(batch, layers) * limit * (self._rand(batch, layers) < 0.6)
        )
        deform_amp[:, 0] = 0.0
        # Static appearance: texture, its placement, the shape of each foreground layer.
        texture_index = torch.randint(
            0, len(self.textures), (batch, layers), generator=self.generator, device=self.device
        )
        texture_scale = 0.7 + 1.3 * self._rand(batch, layers)
        texture_angle = 2 * math.pi * self._rand(batch, layers)
        texture_shift = 2 * self._rand(batch, layers, 2) - 1
        limb = self._rand(batch, layers) < opts.limb_fraction
        short_side = min(height, width)
        radius_a = short_side * (0.08 + 0.22 * self._rand(batch, layers))
        radius_b = torch.where(
            limb,
            radius_a * (0.12 + 0.15 * self._rand(batch, layers)),
            radius_a * (0.5 + 0.5 * self._rand(batch, layers)),
        )
        radius_a = torch.where(limb, radius_a * 1.8, radius_a)
        shape_angle = 2 * math.pi * self._rand(batch, layers)
        wobble = 0.25 * self._randn(batch * layers, 1, 4, 4)  # blob outline noise
        deform = self._randn(batch * layers, 2, 4, 4)
        deform = deform / deform.flatten(1).abs().amax(1).clamp_min(1e-6).view(-1, 1, 1, 1)

        grid_y, grid_x = torch.meshgrid(
            torch.arange(height, device=self.device, dtype=torch.float32),
            torch.arange(width, device=self.device, dtype=torch.float32),
            indexing="ij",
        )
        pixels = torch.stack((grid_x, grid_y), -1)  # (H, W, 2)
        params = _LayerParams(velocity, spin, zoom, centre, deform_amp, deform, size)
        frames, canon_t, alpha_t = {}, None, None
        for name, s in (("img0", 0.0), ("target", None), ("img1", 1.0)):
            s_tensor = timestep if s is None else torch.full_like(timestep, s)
            canonical = params.invert(pixels, s_tensor - 0.5)  # (B, L, H, W, 2)
            color = self._texture(
                canonical, texture_index, texture_scale, texture_angle, texture_shift, size
            )
            alpha = _shape_alpha(canonical, centre, radius_a, radius_b, shape_angle, wobble, size)
            alpha = alpha * present[:, :, None, None].float()
            alpha[:, 0] = 1.0
            frames[name] = _composite(color, alpha)
            if s is None:
                canon_t, alpha_t = canonical, alpha
        # Exact flow at t from the front-most layer covering each pixel.
        front = _front_layer(alpha_t)  # (B, H, W) index
        pick = front[:, None, :, :, None].expand(-1, 1, -1, -1, 2)
        canon_front = torch.gather(canon_t, 1, pick)  # (B, 1, H, W, 2)
        flows = []
        for u in (-0.5, 0.5):
            position = params.forward_front(canon_front, front, u)
            flows.append((position - pixels).permute(0, 3, 1, 2))
        flow = torch.cat(flows, 1)
        coverage = torch.gather(alpha_t, 1, front[:, None]).squeeze(1)
        edges = alpha_t[:, 1:].clamp(0, 1)
        soft = ((edges > 0.03) & (edges < 0.97)).any(1)
        valid = (~soft & (coverage > 0.97)).float()[:, None]
        out = {}
        for name in ("img0", "target", "img1"):
            frame = frames[name]
            if self.options.noise > 0:
                frame = frame + self.options.noise * self._rand(1).item() * self._randn(
                    *frame.shape
                )
            out[name] = frame.clamp(0, 1)
        return {
            "img0": out["img0"],
            "img1": out["img1"],
            "targets": out["target"][:, None],
            "timesteps": timestep[:, None],
            "flow": flow[:, None],
            "flow_valid": valid[:, None],
        }

    def _texture(self, canonical, index, scale, angle, shift, size) -> Tensor:
        """Colours (B, L, 3, H, W) of each layer's texture at its canonical coordinates."""
        batch, layers, height, width, _ = canonical.shape
        norm = max(height, width) / 2.0
        rel = (canonical - torch.tensor([width / 2, height / 2], device=self.device)) / norm
        cos, sin = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
        tx = (cos * rel[..., 0] - sin * rel[..., 1]) / scale[..., None, None] + shift[
            ..., 0, None, None
        ]
        ty = (sin * rel[..., 0] + cos * rel[..., 1]) / scale[..., None, None] + shift[
            ..., 1, None, None
        ]
        grid = torch.stack((tx, ty), -1).flatten(0, 1)
        source = self._bank(min(TEXTURE_SIZE, max(height, width)))[index.flatten()].float() / 255.0
        color = F.grid_sample(
            source, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        return color.view(batch, layers, 3, height, width)


@dataclass
class _LayerParams:
    velocity: Tensor  # (B, L, 2)
    spin: Tensor  # (B, L)
    zoom: Tensor
    centre: Tensor  # (B, L, 2)
    deform_amp: Tensor  # (B, L)
    deform: Tensor  # (B*L, 2, 4, 4), unit amplitude
    size: tuple[int, int]

    def _affine_inverse(self, points: Tensor, u: Tensor) -> Tensor:
        """Inverse of the affine part at ``u`` (B,) for points (B, L, H, W, 2) or (H, W, 2)."""
        u = u[:, None, None, None]
        angle = -(self.spin[..., None, None] * u)
        factor = 1.0 / (1.0 + self.zoom[..., None, None] * u)
        rel = (
            points - self.centre[:, :, None, None] - self.velocity[:, :, None, None] * u[..., None]
        )
        cos, sin = torch.cos(angle), torch.sin(angle)
        x = factor * (cos * rel[..., 0] - sin * rel[..., 1])
        y = factor * (sin * rel[..., 0] + cos * rel[..., 1])
        return torch.stack((x, y), -1) + self.centre[:, :, None, None]

    def _field(self, canonical: Tensor) -> Tensor:
        """D(c) (B, L, H, W, 2) in pixels (before the time factor)."""
        batch, layers, height, width, _ = canonical.shape
        grid = canonical / torch.tensor([width - 1, height - 1], device=canonical.device) * 2 - 1
        field = F.grid_sample(
            self.deform,
            grid.flatten(0, 1),
            mode="bicubic",
            padding_mode="border",
            align_corners=True,
        )
        field = field.view(batch, layers, 2, height, width).permute(0, 1, 3, 4, 2)
        return field * self.deform_amp[..., None, None, None]

    def invert(self, pixels: Tensor, u: Tensor, steps: int = 8) -> Tensor:
        """Canonical coordinates (B, L, H, W, 2) of screen ``pixels`` (H, W, 2) at ``u`` (B,).

        ``x = A_u(c) + u D(c)``, so ``c = A_u^{-1}(x - u D(c))``: a fixed point; D is smooth, so
        each step shrinks the error about twofold (8 steps: under 0.05 px at 10 px of deformation).
        """
        batch, layers = self.spin.shape
        points = pixels.expand(batch, layers, *pixels.shape)
        canonical = self._affine_inverse(points, u)
        ucol = u[:, None, None, None, None]
        for _ in range(steps):
            canonical = self._affine_inverse(points - ucol * self._field(canonical), u)
        return canonical

    def forward_front(self, canonical: Tensor, front: Tensor, u: float) -> Tensor:
        """Screen position (B, H, W, 2) at time ``u`` of the canonical points (B, 1, H, W, 2)
        of layer ``front`` (B, H, W)."""
        batch, height, width = front.shape
        index = front.flatten(1)

        def per_pixel(value: Tensor) -> Tensor:  # (B, L) or (B, L, 2) -> (B, H, W[, 2])
            if value.dim() == 2:
                return value.gather(1, index).view(batch, height, width)
            return value.gather(1, index[..., None].expand(-1, -1, 2)).view(batch, height, width, 2)

        layers = self.spin.shape[1]
        field = self._field(canonical.expand(-1, layers, -1, -1, -1))
        field = torch.gather(field, 1, front[:, None, :, :, None].expand(-1, 1, -1, -1, 2)).squeeze(
            1
        )
        canonical = canonical.squeeze(1)
        angle, factor = per_pixel(self.spin) * u, 1.0 + per_pixel(self.zoom) * u
        centre = per_pixel(self.centre)
        rel = canonical - centre
        cos, sin = torch.cos(angle), torch.sin(angle)
        x = factor * (cos * rel[..., 0] - sin * rel[..., 1])
        y = factor * (sin * rel[..., 0] + cos * rel[..., 1])
        return torch.stack((x, y), -1) + centre + per_pixel(self.velocity) * u + u * field


def _shape_alpha(canonical, centre, radius_a, radius_b, angle, wobble, size) -> Tensor:
    """Soft alpha (B, L, H, W) of each layer's ellipse-like shape (outline perturbed by noise)."""
    batch, layers, height, width, _ = canonical.shape
    rel = canonical - centre[:, :, None, None]
    cos, sin = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
    along = cos * rel[..., 0] + sin * rel[..., 1]
    across = -sin * rel[..., 0] + cos * rel[..., 1]
    radius = torch.sqrt(
        (along / radius_a[..., None, None]) ** 2 + (across / radius_b[..., None, None]) ** 2 + 1e-8
    )
    grid = (
        torch.stack((along / radius_a[..., None, None], across / radius_b[..., None, None]), -1)
        * 0.5
    )
    noise = F.grid_sample(
        wobble, grid.flatten(0, 1), mode="bicubic", padding_mode="border", align_corners=True
    )
    radius = radius + noise.view(batch, layers, height, width)
    edge = radius_b[..., None, None].clamp_min(2.0)  # about one pixel of soft edge
    return torch.sigmoid((1.0 - radius) * edge * 1.5)


def _composite(color: Tensor, alpha: Tensor) -> Tensor:
    """Back-to-front ``over`` of layers (B, L, 3, H, W) with alphas (B, L, H, W)."""
    frame = color[:, 0]
    for layer in range(1, color.shape[1]):
        a = alpha[:, layer, None]
        frame = a * color[:, layer] + (1 - a) * frame
    return frame


def _front_layer(alpha: Tensor) -> Tensor:
    """Index (B, H, W) of the front-most layer with alpha above 1/2 (0: background)."""
    layers = alpha.shape[1]
    order = torch.arange(layers, device=alpha.device).view(1, layers, 1, 1)
    covering = (alpha > 0.5) | (order == 0)
    return (covering * order).amax(1)
