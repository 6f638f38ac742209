"""Synthetic scenes with exact ground truth, in the spirit of FlyingChairs / FlyingThings but for
interpolation: the frame at any t in [0, 1] and the exact backward flows of the visible surface.

A scene is a textured background under a smooth camera motion (rotation, zoom, translation and a
perspective tilt, each a quadratic function of t, so paths accelerate) and several foreground
layers: photo textures cut by random soft-edged shapes, each moving, rotating and zooming along
its own path, drawn back to front so that they occlude and reveal each other. Every layer maps
its texture to the screen by a homography ``H(t)``, so a screen point ``x`` at time t shows the
texture point ``H(t)^-1 x``, which is at ``H(s) H(t)^-1 x`` at time s: that is the flow.

Photometric effects (a brightness ramp, motion blur, sensor noise) are drawn at random; blurred
samples get ``flow_valid = 0`` (their flow is that of the exposure's centre only). Soft shape
edges, where two surfaces mix, are also marked invalid. Flows follow ARCHITECTURE.md: pixels,
channels 0-1 from the target to frame 0, 2-3 to frame 1, x before y, pixel centres at integers
(``warp(img0, flow[:2])`` with ``align_corners=True`` reproduces the target where the surface is
visible in frame 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emavfi.data.sources.base import IMAGE_SUFFIXES, read_image, require_dir
from emavfi.errors import EmavfiError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticConfig:
    """How scenes are drawn. ``max_motion`` is the largest layer displacement between frame 0
    and frame 1 as a fraction of the crop's larger side."""

    size: tuple[int, int] = (256, 256)  # (height, width)
    layers: tuple[int, int] = (2, 5)  # foreground layer count, inclusive range
    max_motion: float = 0.25
    timesteps: tuple[float, ...] | None = None  # None: uniform in [1/16, 15/16]
    perspective: bool = True
    brightness_prob: float = 0.3
    blur_prob: float = 0.1
    noise_prob: float = 0.3


@dataclass(frozen=True)
class MotionPath:
    """A texture-to-screen homography whose parameters are quadratic in t.

    ``H(t) = T(position(t)) P(tilt(t)) R(angle(t)) S(scale(t)) T(-anchor)``, with the anchor a
    point of the texture (pixels) and the position a point of the screen (pixels).
    """

    anchor: tuple[float, float]
    position: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]  # p0, v, a
    angle: tuple[float, float, float]  # radians: a0, velocity, acceleration
    scale: tuple[float, float]  # s0, rate (s(t) = s0 * (1 + rate * t))
    tilt: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))  # p0, rate

    def params(self, t: float) -> dict[str, float]:
        """The transform's parameters at time t."""
        (p0, v, a), (a0, av, aa) = self.position, self.angle
        (tilt0, tilt_rate) = self.tilt
        return {
            "x": p0[0] + v[0] * t + 0.5 * a[0] * t * t,
            "y": p0[1] + v[1] * t + 0.5 * a[1] * t * t,
            "angle": a0 + av * t + 0.5 * aa * t * t,
            "scale": self.scale[0] * (1.0 + self.scale[1] * t),
            "tilt_x": tilt0[0] + tilt_rate[0] * t,
            "tilt_y": tilt0[1] + tilt_rate[1] * t,
        }

    def homography(self, t: float) -> np.ndarray:
        """The 3x3 float64 matrix mapping texture pixels to screen pixels at time t."""
        p = self.params(t)
        cos, sin = np.cos(p["angle"]) * p["scale"], np.sin(p["angle"]) * p["scale"]
        centred = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
        centred = centred @ np.array(
            [[1.0, 0, -self.anchor[0]], [0, 1.0, -self.anchor[1]], [0, 0, 1.0]]
        )
        tilt = np.array([[1.0, 0, 0], [0, 1.0, 0], [p["tilt_x"], p["tilt_y"], 1.0]])
        move = np.array([[1.0, 0, p["x"]], [0, 1.0, p["y"]], [0, 0, 1.0]])
        return move @ tilt @ centred


@dataclass(frozen=True)
class Layer:
    """A texture and its motion. The background's texture is ``hxwx3`` uint8 RGB, opaque, and
    repeats by reflection; a foreground layer's is ``hxwx4`` uint8 RGBA, the alpha channel being
    its soft-edged shape (0 outside)."""

    texture: np.ndarray
    motion: MotionPath

    @property
    def opaque(self) -> bool:
        return self.texture.shape[2] == 3


@dataclass(frozen=True)
class Scene:
    """Background first, then the foreground layers back to front, plus photometric effects."""

    layers: tuple[Layer, ...]
    size: tuple[int, int]
    gain: tuple[np.ndarray, np.ndarray]  # RGB gain at t=0 and t=1 (linear in between)
    blur_exposure: float  # 0: no motion blur; else the exposure as a fraction of the interval
    noise_sigma: float  # 0: no noise


@dataclass
class Render:
    """One frame: ``image`` HxWx3 float32 RGB in [0, 1], ``ids`` HxW int16 index of the visible
    layer, ``purity`` HxW float32 share of the visible layer in the pixel's colour."""

    image: np.ndarray
    ids: np.ndarray
    purity: np.ndarray


def _screen_box(
    matrix: np.ndarray, shape: tuple[int, ...], size: tuple[int, int]
) -> tuple[int, ...] | None:
    """The screen rectangle (x0, y0, x1, y1) covered by a texture's corners, or None if off-screen."""
    height, width = shape[:2]
    corners = np.array([[[0, 0], [width, 0], [0, height], [width, height]]], np.float64)
    projected = cv2.perspectiveTransform(corners, matrix)[0]
    x0, y0 = np.floor(projected.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(projected.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size[1]), min(y1, size[0])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def render_layers(scene: Scene, t: float) -> Render:
    """Composite every layer at time t (no photometric effects)."""
    height, width = scene.size
    background = scene.layers[0]
    image = cv2.warpPerspective(
        background.texture,
        background.motion.homography(t),
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    ).astype(np.float32) * (1.0 / 255.0)
    ids = np.zeros((height, width), np.int16)
    purity = np.ones((height, width), np.float32)
    for index, layer in enumerate(scene.layers[1:], start=1):
        matrix = layer.motion.homography(t)
        box = _screen_box(matrix, layer.texture.shape, scene.size)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        shifted = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]]) @ matrix
        rgba = cv2.warpPerspective(
            layer.texture, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR
        )
        rgba = rgba.astype(np.float32) * (1.0 / 255.0)
        alpha = rgba[..., 3]
        region = (slice(y0, y1), slice(x0, x1))
        image[region] += alpha[..., None] * (rgba[..., :3] - image[region])
        below = purity[region] * (1.0 - alpha)
        ids[region] = np.where(alpha >= below, np.int16(index), ids[region])
        purity[region] = np.maximum(alpha, below)
    return Render(image, ids, purity)


def render_frame(
    scene: Scene, t: float, rng: np.random.Generator | None = None, layers: Render | None = None
) -> np.ndarray:
    """The frame at time t with the scene's effects: HxWx3 float32 RGB in [0, 1].

    Noise is drawn from ``rng`` (none if None); everything else is a pure function of t.
    ``layers`` may pass ``render_layers(scene, t)`` if already computed.
    """
    if scene.blur_exposure > 0:
        offsets = np.linspace(-0.5, 0.5, 5) * scene.blur_exposure
        image = np.mean([render_layers(scene, t + dt).image for dt in offsets], axis=0)
    else:
        image = (layers or render_layers(scene, t)).image
    gain = scene.gain[0] + (scene.gain[1] - scene.gain[0]) * t
    noisy = scene.noise_sigma > 0 and rng is not None
    if not np.allclose(gain, 1.0):
        image = image * gain.astype(np.float32)
    if noisy:
        image = image + rng.normal(0.0, scene.noise_sigma, image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0, out=image) if noisy or not np.allclose(gain, 1.0) else image


def pixel_grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Screen coordinates (x, y), each HxW float64, pixel centres at integers."""
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    return xs.astype(np.float64), ys.astype(np.float64)


def backward_flows(scene: Scene, t: float, ids: np.ndarray) -> np.ndarray:
    """Exact flows of the visible surface from time t to times 0 and 1: HxWx4 float32 pixels.

    ``ids`` (HxW) says which layer each pixel shows at time t.
    """
    flow = np.zeros((*scene.size, 4), np.float32)
    for index, layer in enumerate(scene.layers):
        rows, cols = np.nonzero(ids == index)
        if rows.size == 0:
            continue
        points = np.stack([cols, rows], axis=-1)[None].astype(np.float64)
        to_texture = np.linalg.inv(layer.motion.homography(t))
        for channel, target in ((0, 0.0), (2, 1.0)):
            # screen at t -> texture -> screen at the target time
            moved = cv2.perspectiveTransform(points, layer.motion.homography(target) @ to_texture)[
                0
            ]
            flow[rows, cols, channel : channel + 2] = moved - points[0]
    return flow


def visibility(
    flow: np.ndarray, ids_t: np.ndarray, ids_0: np.ndarray, ids_1: np.ndarray
) -> np.ndarray:
    """HxWx2 bool: whether the surface seen at time t is also the one seen in frame 0 / frame 1."""
    xs, ys = pixel_grid(ids_t.shape)
    result = []
    for offset, ids_end in ((0, ids_0), (2, ids_1)):
        map_x = (xs + flow[..., offset]).astype(np.float32)
        map_y = (ys + flow[..., offset + 1]).astype(np.float32)
        seen = cv2.remap(
            ids_end.astype(np.float32), map_x, map_y, cv2.INTER_NEAREST, borderValue=-1.0
        )
        result.append(seen == ids_t)
    return np.stack(result, axis=-1)


@dataclass
class SyntheticSample:
    """One sample: frames HxWx3 float32 RGB in [0, 1]; ``targets`` Kx HxWx3 at ``timesteps``
    (K,); ``flow`` KxHxWx4 pixels; ``flow_valid`` KxHxW float32; ``visible`` KxHxWx2 bool
    (target surface seen in frame 0 / frame 1: where warping can reproduce the target)."""

    img0: np.ndarray
    img1: np.ndarray
    targets: np.ndarray
    timesteps: np.ndarray
    flow: np.ndarray
    flow_valid: np.ndarray
    visible: np.ndarray | None
    scene: Scene


def render_sample(
    scene: Scene, timesteps: list[float], rng: np.random.Generator, with_visibility: bool = False
) -> SyntheticSample:
    """Frames 0 and 1, the targets at ``timesteps``, their exact flows and validity
    (``visible`` is only computed if ``with_visibility``, else None)."""
    end_0, end_1 = render_layers(scene, 0.0), render_layers(scene, 1.0)
    targets, flows, valids, visible = [], [], [], []
    for t in timesteps:
        layers_t = render_layers(scene, t)
        flow = backward_flows(scene, t, layers_t.ids)
        exact = (layers_t.purity > 0.99).astype(np.float32) * float(scene.blur_exposure == 0)
        targets.append(render_frame(scene, t, rng, layers_t))
        flows.append(flow)
        valids.append(exact)
        if with_visibility:
            visible.append(visibility(flow, layers_t.ids, end_0.ids, end_1.ids))
    return SyntheticSample(
        img0=render_frame(scene, 0.0, rng, end_0),
        img1=render_frame(scene, 1.0, rng, end_1),
        targets=np.stack(targets),
        timesteps=np.asarray(timesteps, np.float32),
        flow=np.stack(flows),
        flow_valid=np.stack(valids),
        visible=np.stack(visible) if with_visibility else None,
        scene=scene,
    )


class TextureBank:
    """The images of a folder, decoded on first use and kept (longest side at most ``max_side``)."""

    def __init__(self, folder: str | Path, max_side: int = 640) -> None:
        self.folder = require_dir(Path(folder), "texture")
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise EmavfiError(f"no texture images in {self.folder}")
        self.max_side = max_side
        self._images: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        """Texture ``index`` as hxwx3 uint8 RGB."""
        if index not in self._images:
            image = read_image(self.paths[index])
            scale = self.max_side / max(image.shape[:2])
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            self._images[index] = image
        return self._images[index]


def random_shape(rng: np.random.Generator, side: int) -> np.ndarray:
    """A soft-edged random shape (star polygons and ellipses): side x side float32 in [0, 1]."""
    canvas = np.zeros((side, side), np.uint8)
    centre, sub = side / 2.0, 16  # fillPoly's shift=4: 1/16-pixel vertices
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.6:
            count = int(rng.integers(3, 10))
            angles = np.sort(rng.uniform(0, 2 * np.pi, count))
            radii = rng.uniform(0.25, 0.42, count) * side
            points = np.stack(
                [centre + radii * np.cos(angles), centre + radii * np.sin(angles)], axis=1
            )
            cv2.fillPoly(
                canvas, [np.round(points * sub).astype(np.int32)], 255, cv2.LINE_AA, shift=4
            )
        else:
            axes = (int(rng.uniform(0.15, 0.36) * side), int(rng.uniform(0.15, 0.36) * side))
            offset = rng.uniform(-0.06, 0.06, 2) * side
            cv2.ellipse(
                canvas,
                (int(centre + offset[0]), int(centre + offset[1])),
                axes,
                float(rng.uniform(0, 180)),
                0,
                360,
                255,
                -1,
                cv2.LINE_AA,
            )
    alpha = canvas.astype(np.float32) / 255.0
    return cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.5, 2.0)))


def _displacement(
    rng: np.random.Generator, limit: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Velocity and acceleration whose displacement over [0, 1] stays within ``limit`` pixels."""
    direction = rng.uniform(0, 2 * np.pi)
    speed = limit * rng.random() ** 1.5  # small motions more often than large ones
    velocity = np.array([np.cos(direction), np.sin(direction)]) * speed
    acceleration = rng.normal(0.0, 0.3 * limit, 2)
    reach = np.linalg.norm(velocity + 0.5 * acceleration)
    if reach > limit:
        velocity, acceleration = velocity * limit / reach, acceleration * limit / reach
    return tuple(velocity), tuple(acceleration)


class SyntheticScenes:
    """An infinite seeded stream of scenes: ``sample(index)`` is the same for the same seed."""

    def __init__(
        self,
        textures: str | Path | TextureBank,
        config: SyntheticConfig = SyntheticConfig(),
        seed: int = 0,
    ) -> None:
        self.textures = textures if isinstance(textures, TextureBank) else TextureBank(textures)
        self.config = config
        self.seed = seed

    def sample(
        self, index: int, targets: int = 1, with_visibility: bool = False
    ) -> SyntheticSample:
        """Sample ``index`` of this stream, with ``targets`` target frames."""
        return self.sample_with(np.random.default_rng([self.seed, index]), targets, with_visibility)

    def sample_with(
        self, rng: np.random.Generator, targets: int = 1, with_visibility: bool = False
    ) -> SyntheticSample:
        """A sample drawn from ``rng``."""
        scene = self.scene(rng)
        if self.config.timesteps:
            timesteps = [
                self.config.timesteps[i % len(self.config.timesteps)] for i in range(targets)
            ]
        else:
            timesteps = list(rng.uniform(1 / 16, 15 / 16, targets))
        return render_sample(scene, timesteps, rng, with_visibility)

    def scene(self, rng: np.random.Generator) -> Scene:
        """A random scene: background, foreground layers and photometric effects."""
        config = self.config
        layers = [self._background(rng)]
        low, high = config.layers
        layers += [self._foreground(rng) for _ in range(int(rng.integers(low, high + 1)))]
        gain0 = np.ones(3)
        gain1 = np.ones(3)
        if rng.random() < config.brightness_prob:
            gain0 = 1.0 + rng.uniform(-0.15, 0.15) + rng.uniform(-0.03, 0.03, 3)
            gain1 = gain0 * (1.0 + rng.uniform(-0.15, 0.15))
        blur = float(rng.uniform(0.1, 0.5)) if rng.random() < config.blur_prob else 0.0
        noise = float(rng.uniform(0.003, 0.02)) if rng.random() < config.noise_prob else 0.0
        return Scene(tuple(layers), config.size, (gain0, gain1), blur, noise)

    def _texture(self, rng: np.random.Generator, min_side: int) -> np.ndarray:
        texture = self.textures.get(int(rng.integers(len(self.textures))))
        if min(texture.shape[:2]) < min_side:
            scale = min_side / min(texture.shape[:2])
            texture = cv2.resize(texture, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        return texture

    def _background(self, rng: np.random.Generator) -> Layer:
        height, width = self.config.size
        longest = max(height, width)
        texture = self._texture(rng, int(1.2 * longest))
        limit = 0.7 * self.config.max_motion * longest
        velocity, acceleration = _displacement(rng, limit)
        offset = rng.uniform(-0.1, 0.1, 2) * longest
        tilt = ((0.0, 0.0), (0.0, 0.0))
        if self.config.perspective:
            tilt = (
                tuple(rng.uniform(-0.5, 0.5, 2) / longest),
                tuple(rng.uniform(-0.4, 0.4, 2) / longest),
            )
        motion = MotionPath(
            anchor=(texture.shape[1] / 2.0, texture.shape[0] / 2.0),
            position=((width / 2.0 + offset[0], height / 2.0 + offset[1]), velocity, acceleration),
            angle=(rng.uniform(-np.pi, np.pi), rng.uniform(-0.15, 0.15), rng.uniform(-0.1, 0.1)),
            scale=(rng.uniform(0.9, 1.4), rng.uniform(-0.15, 0.15)),
            tilt=tilt,
        )
        return Layer(texture, motion)

    def _foreground(self, rng: np.random.Generator) -> Layer:
        height, width = self.config.size
        side = max(8, int(rng.uniform(0.25, 0.6) * min(height, width)))
        source = self._texture(rng, side)
        top = int(rng.integers(source.shape[0] - side + 1))
        left = int(rng.integers(source.shape[1] - side + 1))
        texture = np.ascontiguousarray(source[top : top + side, left : left + side])
        velocity, acceleration = _displacement(rng, self.config.max_motion * max(height, width))
        tilt = ((0.0, 0.0), (0.0, 0.0))
        if self.config.perspective:
            tilt = (
                tuple(rng.uniform(-0.3, 0.3, 2) / side),
                tuple(rng.uniform(-0.3, 0.3, 2) / side),
            )
        motion = MotionPath(
            anchor=(side / 2.0, side / 2.0),
            position=(
                (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height),
                velocity,
                acceleration,
            ),
            angle=(rng.uniform(-np.pi, np.pi), rng.uniform(-0.6, 0.6), rng.uniform(-0.3, 0.3)),
            scale=(rng.uniform(0.7, 1.3), rng.uniform(-0.25, 0.25)),
            tilt=tilt,
        )
        alpha = np.round(random_shape(rng, side) * 255).astype(np.uint8)
        return Layer(np.dstack([texture, alpha]), motion)
