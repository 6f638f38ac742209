"""RIFE v4: the network (``IFNet``, Practical-RIFE v4.25 layout); its spec is in ``specs``."""

from emavfi.models.rife.net import IFNet

__all__ = ["IFNet"]
