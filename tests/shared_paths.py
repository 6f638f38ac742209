"""Where the shared test data lives (../shared beside the checkout, as in CI).

``EMAVFI_SHARED`` overrides it; a clone elsewhere on the development machine falls back to
/work/shared. Tests that read it do not skip when it is absent: CI always has it.
"""

import os
from pathlib import Path


def _shared_root() -> Path:
    if os.environ.get("EMAVFI_SHARED"):
        return Path(os.environ["EMAVFI_SHARED"])
    beside = Path(__file__).resolve().parents[2] / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


SHARED = _shared_root()
SHARED_DATA = SHARED / "data"
FIXTURES = SHARED / "fixtures" / "ema_official"
