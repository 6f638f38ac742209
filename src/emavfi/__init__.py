"""emavfi: video frame interpolation with EMA-VFI.

Public API::

    from emavfi import Interpolator, create_model, list_models, load_model
"""

from importlib import metadata

from emavfi.interpolator import Interpolator
from emavfi.models.registry import create_model, list_models


def load_model(name_or_path, device="cpu"):
    """A registry name with packaged weights, our .safetensors, or a published EMA-VFI or
    Practical-RIFE v4.25 .pkl (see ``emavfi.models.checkpoints.load_model``)."""
    from emavfi.models.checkpoints import load_model as _load

    return _load(name_or_path, device=device)


__all__ = ["Interpolator", "create_model", "list_models", "load_model"]
try:  # one source of truth: pyproject.toml, through the installed package's metadata
    __version__ = metadata.version("emavfi")
except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"
