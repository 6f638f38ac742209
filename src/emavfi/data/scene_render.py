"""Rendering of synthetic scenes (see `emavfi.data.synthetic`): layers mapped to the screen by
homographies, composited back to front, and the exact backward flows of the visible surface.

Every layer maps its texture to the screen by a homography ``H(t)``, so a screen point ``x`` at
time t shows the texture point ``H(t)^-1 x``, which is at ``H(s) H(t)^-1 x`` at time s: that is
the flow. Flows follow ARCHITECTURE.md: pixels, channels 0-1 from the target to frame 0, 2-3 to
frame 1, x before y, pixel centres at integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


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
