"""Settings for the whole test session: graph backends export into a temporary cache.

``Interpolator``'s default backend (auto) may export a model to ONNX on frames of 512x512 and
more (``emavfi.runtime.backends``); tests must not write into the user's ``~/.cache/emavfi``.
"""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _graph_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMAVFI_CACHE", str(tmp_path_factory.mktemp("emavfi-cache")))
        yield


def pytest_collection_modifyitems(config, items):
    """The graph-backend tests run last. With OpenVINO's and ONNX Runtime's thread pools started in
    the test process, the torchrun tests that came after them in one full run crashed the
    interpreter (SIGSEGV, no Python stack; not reproduced in smaller runs), so nothing that
    starts subprocesses runs after them."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/runtime/"))
