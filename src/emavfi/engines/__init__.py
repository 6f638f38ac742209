"""Weight-free interpolators with the model contract: the baselines and the no-weights fallback.

Both are registered in the model registry (``blend``, ``classical``) so they can be used wherever a
model name is accepted.
"""

from emavfi.engines.blend import BlendEngine
from emavfi.engines.classical import ClassicalEngine
from emavfi.models.registry import ModelSpec, register_model

register_model(
    ModelSpec(
        name="blend",
        builder=BlendEngine,
        learned=False,
        description="linear cross-fade of the two frames (weight-free baseline)",
    )
)
register_model(
    ModelSpec(
        name="classical",
        builder=ClassicalEngine,
        arch={"preset": "medium"},
        learned=False,
        description="OpenCV DIS optical flow both ways, warping to t, occlusion-aware blending",
    )
)

__all__ = ["BlendEngine", "ClassicalEngine"]
