"""EMA-VFI: the network (``EMAVFI``) and its parts; specs are registered in ``specs``."""

from emavfi.models.ema_vfi.net import EMAVFI, PairFeatures

__all__ = ["EMAVFI", "PairFeatures"]
